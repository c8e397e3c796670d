"""Wire the components into one stack and compute its outputs.

``build_stack(config, secrets)`` is what ``__main__.py`` calls and what the mocked tests run; it
returns the stack outputs instead of exporting them so that tests can inspect them.
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from infra.access_logs import AccessLogs, AccessLogsArgs
from infra.alarms import Alarms, AlarmsArgs
from infra.app_secrets import AppSecrets, AppSecretsArgs
from infra.autoscaling import Autoscaling, AutoscalingArgs
from infra.bedrock_access import routable_model_ids
from infra.dashboard import OpsDashboard, OpsDashboardArgs
from infra.database import Database, DatabaseArgs
from infra.flow_logs import FlowLogs, FlowLogsArgs
from infra.iam import ServiceRoles, ServiceRolesArgs
from infra.image import ContainerImage, ContainerImageArgs
from infra.keys import Keys, KeysArgs
from infra.load_balancer import LoadBalancer, LoadBalancerArgs
from infra.network import Network, NetworkArgs
from infra.observability import METRIC_NAMESPACE, MetricsPipeline, MetricsPipelineArgs
from infra.policies import ecr_repository_arn
from infra.service import Service, ServiceArgs
from infra.stack_config import StackConfig, StackSecrets
from infra.urls import DOCDB_PORT, base_url, claude_code_env, mongodb_options
from infra.waf import WebFirewall, WebFirewallArgs

PLAIN_HTTP_WARNING = (
    "allowInsecureHttp=true: the proxy is served over PLAIN HTTP, so developers' Anthropic keys and "
    "subscription tokens, proxy keys, the admin password and the session cookie cross the internet "
    "unencrypted. Use this only for a throwaway stack; set certificateArn or domainName + hostedZoneId."
)
NO_NAT_WARNING = "natGateways=0: the tasks cannot reach api.anthropic.com; every request goes to Bedrock."
NO_ADMIN_CIDRS_WARNING = (
    "adminAllowedCidrs is empty: /ui and /admin answer 403 to everyone on the internet; "
    "set adminAllowedCidrs to the networks allowed to administer the proxy."
)
UNPINNED_IMAGE_WARNING = "image is not pinned by digest (@sha256:...): a re-pushed tag would change what runs."


def secret_key(secret_arn: pulumi.Input[str], json_key: str) -> pulumi.Output[str]:
    """ECS ``valueFrom`` for one JSON key of a secret (``<arn>:<key>::``, current version)."""
    return pulumi.Output.concat(secret_arn, f":{json_key}::")


def warnings_for(config: StackConfig) -> list[str]:
    """Operator warnings (valid but risky settings): logged with ``pulumi.log.warn`` on every
    preview/up and exported as the ``warnings`` output."""
    warnings = []
    if not config.https:
        warnings.append(PLAIN_HTTP_WARNING)
    if config.nat_gateways == 0:
        warnings.append(NO_NAT_WARNING)
    if not config.admin_allowed_cidrs:
        warnings.append(NO_ADMIN_CIDRS_WARNING)
    if config.image is not None and "@sha256:" not in config.image:
        warnings.append(UNPINNED_IMAGE_WARNING)
    if not config.deletion_protection:
        warnings.append(
            "deletionProtection=false: `pulumi destroy` deletes the database, keys and secrets without a guard."
        )
    return warnings


def build_stack(config: StackConfig, secrets: StackSecrets) -> dict[str, pulumi.Input[object]]:
    """Create every resource of the stack. Returns the stack outputs (none of them secret):
    proxyBaseUrl, dashboardUrl, claudeCodeEnv, logGroupName, adminPasswordSecretArn,
    ecrRepositoryUrl, loadBalancerDnsName, alarmTopicArn, warnings."""
    warnings = warnings_for(config)
    for warning in warnings:
        pulumi.log.warn(warning)
    name = config.name
    identity = aws.get_caller_identity_output()
    partition = aws.get_partition_output().partition
    account_id = identity.account_id
    log_group_name = f"/ecs/{name}"
    recovery_window_days = 7 if config.deletion_protection else 0
    protect = config.deletion_protection

    network = Network(
        "network",
        NetworkArgs(
            vpc_cidr=config.vpc_cidr,
            az_count=config.az_count,
            nat_gateways=config.nat_gateways,
            vpc_endpoints=config.vpc_endpoints,
            https=config.https,
            region=config.region,
            bedrock_runtime_endpoint=config.bedrock_runtime_endpoint,
            alb_egress_https=config.admin_oidc is not None,
        ),
    )
    keys = Keys(
        "keys",
        KeysArgs(partition=partition, account_id=account_id, region=config.region, alias_prefix=name, protect=protect),
    )
    app_secrets = AppSecrets(
        "app-secrets",
        AppSecretsArgs(
            name_prefix=name,
            kms_key_arn=keys.data_key_arn,
            admin_password=secrets.admin_password,
            metrics_token=secrets.metrics_token,
            recovery_window_days=recovery_window_days,
            protect=protect,
            oidc_client_secret=secrets.oidc_client_secret if config.sso is not None else None,
        ),
    )
    database = Database(
        "database",
        DatabaseArgs(
            identifier=name,
            database_name=config.mongodb_database,
            vpc_id=network.vpc_id,
            subnet_ids=network.private_subnet_ids,
            client_security_group_id=network.service_security_group_id,
            kms_key_arn=keys.data_key_arn,
            engine_version=config.docdb_engine_version,
            parameter_family=config.docdb_parameter_family,
            instance_class=config.docdb_instance_class,
            instance_count=config.docdb_instance_count,
            backup_retention_days=config.docdb_backup_retention_days,
            deletion_protection=config.deletion_protection,
            final_snapshot=config.final_snapshot,
            log_retention_days=config.log_retention_days,
            secret_recovery_window_days=recovery_window_days,
            protect=protect,
        ),
    )
    ops = config.ops
    access_logs = (
        AccessLogs(
            "access-logs",
            AccessLogsArgs(
                name_prefix=name,
                region=config.region,
                partition=partition,
                account_id=account_id,
                retention_days=ops.alb_access_logs_retention_days,
                force_destroy=not config.deletion_protection,
            ),
        )
        if ops.alb_access_logs
        else None
    )
    if ops.vpc_flow_logs:
        FlowLogs(
            "flow-logs",
            FlowLogsArgs(
                vpc_id=network.vpc_id,
                log_group_name=f"/vpc/{name}/flow-logs",
                retention_days=config.log_retention_days,
                kms_key_arn=keys.data_key_arn,
                region=config.region,
                partition=partition,
                account_id=account_id,
            ),
        )
    oidc_client_secret = None
    if config.admin_oidc is not None:
        oidc_client_secret = pulumi.Output.secret(
            aws.secretsmanager.get_secret_version_output(secret_id=config.admin_oidc.client_secret_arn).secret_string
        )
    load_balancer = LoadBalancer(
        "edge",
        LoadBalancerArgs(
            vpc_id=network.vpc_id,
            subnet_ids=network.public_subnet_ids,
            security_group_id=network.alb_security_group_id,
            idle_timeout_s=config.alb_idle_timeout_s,
            deregistration_delay_s=config.deregistration_delay_s,
            deletion_protection=config.deletion_protection,
            https=config.https,
            certificate_arn=config.certificate_arn,
            domain_name=config.domain_name,
            hosted_zone_id=config.hosted_zone_id,
            ssl_policy=config.ssl_policy,
            admin_allowed_cidrs=config.admin_allowed_cidrs,
            admin_oidc=config.admin_oidc,
            oidc_client_secret=oidc_client_secret,
            access_logs_bucket=None if access_logs is None else access_logs.bucket,
        ),
    )
    if ops.waf:
        WebFirewall(
            "waf",
            WebFirewallArgs(name_prefix=name, load_balancer_arn=load_balancer.alb_arn, rate_limit=ops.waf_rate_limit),
        )
    forwarded_allow_ips = ",".join(network.public_subnet_cidrs)
    image = ContainerImage(
        "image",
        ContainerImageArgs(
            image=config.image,
            force_delete=not config.deletion_protection,
            platform=ops.build_platform,  # no stack-specific build args: one image promotes dev -> prod
        ),
    )
    app_user = {
        "PROXY_MONGODB_USERNAME": secret_key(database.app_secret_arn, "username"),
        "PROXY_MONGODB_PASSWORD": secret_key(database.app_secret_arn, "password"),
    }
    secret_value_froms: dict[str, pulumi.Input[str]] = {**app_secrets.env_secret_arns, **app_user}
    # Only the db-init container sees the master credentials.
    init_secrets: dict[str, pulumi.Input[str]] = {
        **app_user,
        "PROXY_DB_INIT_MASTER_USERNAME": secret_key(database.master_secret_arn, "username"),
        "PROXY_DB_INIT_MASTER_PASSWORD": secret_key(database.master_secret_arn, "password"),
    }
    database_environment: dict[str, pulumi.Input[str]] = {
        "PROXY_MONGODB_HOST": database.endpoint,
        "PROXY_MONGODB_PORT": str(DOCDB_PORT),
        "PROXY_MONGODB_OPTIONS": mongodb_options(),
        "PROXY_MONGODB_DATABASE": config.mongodb_database,
    }
    metrics = MetricsPipeline(
        "metrics",
        MetricsPipelineArgs(
            cluster_name=name,
            region=config.region,
            image=ops.metrics_agent_image,
            app_log_group_name=log_group_name,
            kms_key_arn=keys.data_key_arn,
            metrics_token=secrets.metrics_token,
            secret_recovery_window_days=recovery_window_days,
            emf_retention_days=config.log_retention_days,
        ),
    )
    repository_arn: pulumi.Input[str] | None
    if config.image is None:
        repository_arn = image.repository_arn
    else:
        repository_arn = partition.apply(lambda p: ecr_repository_arn(config.image or "", p))
    roles = ServiceRoles(
        "roles",
        ServiceRolesArgs(
            partition=partition,
            account_id=account_id,
            region=config.region,
            bedrock_region=config.effective_bedrock_region,
            bedrock_model_ids=routable_model_ids(
                config.bedrock_inference_profile_prefix, config.bedrock_extra_model_ids
            ),
            app_key_arn=keys.app_key_arn,
            data_key_arn=keys.data_key_arn,
            secret_value_froms=[
                *secret_value_froms.values(),
                *init_secrets.values(),
                *metrics.execution_secret_arns.values(),
            ],
            log_group_name=log_group_name,
            ecr_repository_arn=repository_arn,
        ),
    )
    metrics.allow_publishing(roles.task_role_arn)
    proxy_base_url = load_balancer.dns_name.apply(lambda dns: base_url(config.https, config.domain_name, dns))
    environment: dict[str, pulumi.Input[str]] = {
        **database_environment,
        "PROXY_MONGODB_MAX_POOL_SIZE": str(config.mongodb_max_pool_size),
        "PROXY_ADMIN_USERNAME": config.admin_username,
        "PROXY_KMS_KEY_ID": keys.app_key_arn,
        "PROXY_KMS_REGION": config.region,
        "PROXY_BEDROCK_REGION": config.effective_bedrock_region,
        "PROXY_BEDROCK_INFERENCE_PROFILE_PREFIX": config.bedrock_inference_profile_prefix,
        "PROXY_PUBLIC_BASE_URL": proxy_base_url,
        "PROXY_LOG_LEVEL": config.log_level,
        "PROXY_KEEPALIVE_TIMEOUT_S": str(config.keepalive_timeout_s),
        # Secure cookies need HTTPS; on the plain-HTTP fallback the dashboard login would never stick.
        "PROXY_COOKIE_SECURE": "true" if config.https else "false",
    }
    if config.sso is not None:  # single sign-on (app/sso; docs/sso.md); secret via PROXY_OIDC_CLIENT_SECRET
        environment.update({"PROXY_OIDC_ISSUER": config.sso.issuer, "PROXY_OIDC_CLIENT_ID": config.sso.client_id,
                            "PROXY_OIDC_ADMIN_GROUPS": config.sso.admin_groups})
    service = Service(
        "service",
        ServiceArgs(
            cluster_name=name,
            log_group_name=log_group_name,
            log_retention_days=config.log_retention_days,
            log_kms_key_arn=keys.data_key_arn,
            region=config.region,
            image=image.image_ref,
            task_cpu=config.task_cpu,
            task_memory_mib=config.task_memory_mib,
            task_role_arn=roles.task_role_arn,
            execution_role_arn=roles.execution_role_arn,
            environment=environment,
            secrets=secret_value_froms,
            forwarded_allow_ips=forwarded_allow_ips,
            stop_timeout_s=config.stop_timeout_s,
            graceful_shutdown_s=config.graceful_shutdown_s,
            subnet_ids=network.private_subnet_ids,
            security_group_id=network.service_security_group_id,
            target_group_arn=load_balancer.target_group_arn,
            listeners=load_balancer.listeners,
            desired_count=config.desired_count,
            init_environment=database_environment,
            init_secrets=init_secrets,
            cpu_architecture=ops.cpu_architecture,
            sidecars=[metrics.container_definition],
        ),
    )
    Autoscaling(
        "autoscaling",
        AutoscalingArgs(
            cluster_name=service.cluster_name,
            service_name=service.service_name,
            min_count=config.min_count,
            max_count=config.max_count,
            concurrent_requests_per_task=ops.concurrent_requests_per_task,
            requests_per_target=config.requests_per_target,
            cpu_target_percent=config.cpu_target_percent,
            request_count_resource_label=pulumi.Output.concat(
                load_balancer.arn_suffix, "/", load_balancer.target_group_arn_suffix
            ),
            metric_cluster_name=name,
        ),
    )
    alarms = Alarms(
        "alarms",
        AlarmsArgs(
            alarm_email=config.alarm_email,
            kms_key_arn=keys.data_key_arn,
            log_group_name=service.log_group_name,
            metric_namespace=f"ClaudeCodeProxy/{name}",
            fallback_rate_percent=config.fallback_rate_alarm_percent,
            alb_arn_suffix=load_balancer.arn_suffix,
            target_group_arn_suffix=load_balancer.target_group_arn_suffix,
            cluster_name=service.cluster_name,
            service_name=service.service_name,
            docdb_instance_identifiers=[f"{name}-{i + 1}" for i in range(config.docdb_instance_count)],
            docdb_instance_class=config.docdb_instance_class,
            prometheus_namespace=METRIC_NAMESPACE,
            prometheus_cluster=name,
            upstream_5xx_percent=ops.upstream_5xx_alarm_percent,
            ttft_p99_ms=ops.ttft_p99_alarm_ms,
            usage_queue_depth=ops.usage_queue_alarm_depth,
        ),
    )
    OpsDashboard(
        "dashboard",
        OpsDashboardArgs(
            name=name,
            region=config.region,
            cluster_name=service.cluster_name,
            service_name=service.service_name,
            alb_arn_suffix=load_balancer.arn_suffix,
            target_group_arn_suffix=load_balancer.target_group_arn_suffix,
            log_metric_namespace=f"ClaudeCodeProxy/{name}",
            app_log_group_name=service.log_group_name,
            docdb_instance_identifiers=[f"{name}-{i + 1}" for i in range(config.docdb_instance_count)],
            concurrent_requests_per_task=ops.concurrent_requests_per_task,
        ),
    )

    return {
        "proxyBaseUrl": proxy_base_url,
        "dashboardUrl": proxy_base_url.apply(lambda url: f"{url}/ui"),
        "claudeCodeEnv": proxy_base_url.apply(claude_code_env),
        "logGroupName": service.log_group_name,
        "adminPasswordSecretArn": app_secrets.admin_password_secret_arn,
        "ecrRepositoryUrl": image.repository_url,
        "loadBalancerDnsName": load_balancer.dns_name,
        "alarmTopicArn": alarms.topic_arn,
        "warnings": warnings,
    }
