"""Database: DocumentDB cluster in the private subnets, TLS enforced, KMS-encrypted, audit and
profiler logs exported, reachable on 27017 only from the service's security group; plus two
credentials in Secrets Manager, both in the DocumentDB rotation format (engine, host, port,
username, password, ssl):

- ``master``: the cluster's master user. Only the ``db-init`` container of the task sees it.
- ``app``: the application user (``APP_USERNAME``, ``readWrite`` on the app's database only), which
  ``claude-code-proxy db-init`` creates or updates at every task start. The app container gets its
  ``username`` and ``password`` keys and builds its URL from them at start, so a rotated password
  reaches every new task and nothing holds a stale copy of it.

The cluster and both secrets are ``protect``-ed when ``deletion_protection`` is on, and deleting the
cluster takes a final snapshot unless ``final_snapshot`` is off.

Sources: docs.aws.amazon.com/documentdb/latest/developerguide/security.encryption.ssl.html (``tls``),
.../event-auditing.html (``audit_logs``), .../profiling.html (``profiler``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from infra.urls import DOCDB_PORT

MASTER_USERNAME = "proxymaster"
#: The application user the proxy connects as (``readWrite`` on ``mongodbDatabase`` only).
APP_USERNAME = "proxyapp"
#: CA the instances present; the RDS global bundle baked into the image trusts it.
CA_CERT_IDENTIFIER = "rds-ca-rsa2048-g1"
EXPORTED_LOGS = ("audit", "profiler")


@dataclass(frozen=True)
class DatabaseArgs:
    """``identifier``: stable cluster name (also names the exported log groups). ``client_security_group_id``:
    the only source allowed on 27017. Days are days; ``instance_count`` includes the primary."""

    identifier: str
    database_name: str
    vpc_id: pulumi.Input[str]
    subnet_ids: pulumi.Input[Sequence[str]]
    client_security_group_id: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    engine_version: str
    parameter_family: str
    instance_class: str
    instance_count: int
    backup_retention_days: int
    deletion_protection: bool
    final_snapshot: bool
    log_retention_days: int
    secret_recovery_window_days: int
    protect: bool = True


class Database(pulumi.ComponentResource):
    """DocumentDB cluster + subnet and security groups. Outputs: endpoint, app_secret_arn (the app
    user's credentials), master_secret_arn, security_group_id, cluster_identifier, instance_identifiers."""

    def __init__(self, name: str, args: DatabaseArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("claude-proxy:data:Database", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        subnet_group = aws.docdb.SubnetGroup(
            f"{name}-subnets", subnet_ids=args.subnet_ids, description="private subnets", opts=child
        )
        sg = aws.ec2.SecurityGroup(
            f"{name}-sg",
            vpc_id=args.vpc_id,
            description="DocumentDB: 27017 from the proxy tasks only",
            tags={"Name": f"{name}-docdb"},
            opts=child,
        )
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-from-service",
            security_group_id=sg.id,
            ip_protocol="tcp",
            from_port=DOCDB_PORT,
            to_port=DOCDB_PORT,
            referenced_security_group_id=args.client_security_group_id,
            description="proxy tasks",
            opts=child,
        )
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-service-to-db",
            security_group_id=args.client_security_group_id,
            ip_protocol="tcp",
            from_port=DOCDB_PORT,
            to_port=DOCDB_PORT,
            referenced_security_group_id=sg.id,
            description="proxy tasks to DocumentDB",
            opts=child,
        )

        params = aws.docdb.ClusterParameterGroup(
            f"{name}-params",
            family=args.parameter_family,
            description="claude-code-proxy: TLS required, audit and profiler logs on",
            parameters=[
                {"name": "tls", "value": "enabled", "apply_method": "pending-reboot"},
                {"name": "audit_logs", "value": "enabled", "apply_method": "immediate"},
                {"name": "profiler", "value": "enabled", "apply_method": "immediate"},
                {"name": "profiler_threshold_ms", "value": "200", "apply_method": "immediate"},
            ],
            opts=child,
        )
        # DocumentDB creates /aws/docdb/<cluster>/<log> with no expiry; creating them first sets
        # retention and encryption (the cluster then writes into the existing groups).
        log_groups = [
            aws.cloudwatch.LogGroup(
                f"{name}-{log}",
                name=f"/aws/docdb/{args.identifier}/{log}",
                retention_in_days=args.log_retention_days,
                kms_key_id=args.kms_key_arn,
                opts=child,
            )
            for log in EXPORTED_LOGS
        ]

        password = random.RandomPassword(
            f"{name}-master-password",
            length=32,
            special=False,  # DocumentDB rejects / @ " and the URL would need escaping; 32 alnum ~ 190 bits
            opts=child,
        )
        snapshot_suffix = random.RandomId(f"{name}-final-snapshot", byte_length=4, opts=child)
        cluster = aws.docdb.Cluster(
            f"{name}-cluster",
            cluster_identifier=args.identifier,
            engine="docdb",
            engine_version=args.engine_version,
            master_username=MASTER_USERNAME,
            master_password=password.result,
            port=DOCDB_PORT,
            db_subnet_group_name=subnet_group.name,
            vpc_security_group_ids=[sg.id],
            db_cluster_parameter_group_name=params.name,
            storage_encrypted=True,
            kms_key_id=args.kms_key_arn,
            backup_retention_period=args.backup_retention_days,
            preferred_backup_window="03:00-04:00",
            preferred_maintenance_window="sun:04:30-sun:05:30",
            deletion_protection=args.deletion_protection,
            skip_final_snapshot=not args.final_snapshot,
            final_snapshot_identifier=snapshot_suffix.hex.apply(lambda h: f"{args.identifier}-final-{h}")
            if args.final_snapshot
            else None,
            enabled_cloudwatch_logs_exports=list(EXPORTED_LOGS),
            opts=pulumi.ResourceOptions(parent=self, depends_on=log_groups, protect=args.protect),
        )
        instances = [
            aws.docdb.ClusterInstance(
                f"{name}-instance-{i}",
                identifier=f"{args.identifier}-{i + 1}",
                cluster_identifier=cluster.id,
                instance_class=args.instance_class,
                ca_cert_identifier=CA_CERT_IDENTIFIER,
                auto_minor_version_upgrade=True,
                promotion_tier=i,
                opts=child,
            )
            for i in range(args.instance_count)
        ]

        def secret(key: str, description: str, value: pulumi.Output[str]) -> aws.secretsmanager.Secret:
            stored = aws.secretsmanager.Secret(
                f"{name}-{key}",
                name_prefix=f"{args.identifier}/{key}-",
                description=description,
                kms_key_id=args.kms_key_arn,
                recovery_window_in_days=args.secret_recovery_window_days,
                opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
            )
            aws.secretsmanager.SecretVersion(
                f"{name}-{key}", secret_id=stored.id, secret_string=pulumi.Output.secret(value), opts=child
            )
            return stored

        def credentials(username: str, password_value: pulumi.Output[str]) -> pulumi.Output[str]:
            # Secrets Manager's DocumentDB rotation format, so a rotation Lambda can be added later.
            return pulumi.Output.all(password_value, cluster.endpoint).apply(
                lambda v: json.dumps(
                    {
                        "engine": "mongo",
                        "username": username,
                        "password": v[0],
                        "host": v[1],
                        "port": DOCDB_PORT,
                        "ssl": True,
                    }
                )
            )

        master = secret("master", "DocumentDB master credentials", credentials(MASTER_USERNAME, password.result))
        app_password = random.RandomPassword(f"{name}-app-password", length=32, special=False, opts=child)
        app = secret(
            "app",
            f"DocumentDB user {APP_USERNAME} (readWrite on {args.database_name})",
            credentials(APP_USERNAME, app_password.result),
        )

        self.endpoint = cluster.endpoint
        self.cluster_identifier = cluster.cluster_identifier
        self.instance_identifiers = pulumi.Output.all(*[i.identifier for i in instances])
        self.security_group_id = sg.id
        self.app_secret_arn = app.arn
        self.master_secret_arn = master.arn
        self.register_outputs(
            {
                "endpoint": self.endpoint,
                "cluster_identifier": self.cluster_identifier,
                "instance_identifiers": self.instance_identifiers,
                "security_group_id": self.security_group_id,
                "app_secret_arn": self.app_secret_arn,
                "master_secret_arn": self.master_secret_arn,
            }
        )
