"""Service: ECS cluster (Container Insights), the app log group, the Fargate task definition (the
proxy plus any sidecars, e.g. the metrics agent) and service behind the ALB. Autoscaling lives in
``autoscaling.py``.

Draining on deploy and scale-in: the ALB keeps a deregistering task's open streams for
``deregistrationDelayS``; then ECS sends SIGTERM, uvicorn stops accepting and waits up to
``stopTimeoutS - 10`` s for open responses, and SIGKILL follows at ``stopTimeoutS`` (Fargate max 120 s).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.container import (
    CONTAINER_NAME,
    CONTAINER_PORT,
    DB_INIT_CONTAINER_NAME,
    SCRATCH_VOLUME,
    ContainerSpec,
    DbInitSpec,
    container_definition,
    db_init_container_definition,
)


@dataclass(frozen=True)
class ServiceArgs:
    """Sizes in Fargate units (CPU units, MiB), times in seconds. ``environment`` holds plain values
    only; ``secrets`` maps env names to Secrets Manager ``valueFrom``s (an ARN, or ARN + JSON key).
    ``init_environment`` / ``init_secrets``: the ``db-init`` container's, which the proxy container
    waits for (None: no init container). ``sidecars``: further container definitions (dicts, e.g.
    the metrics agent), appended after the proxy."""

    cluster_name: str
    log_group_name: str
    log_retention_days: int
    log_kms_key_arn: pulumi.Input[str]
    region: str
    image: pulumi.Input[str]
    task_cpu: int
    task_memory_mib: int
    task_role_arn: pulumi.Input[str]
    execution_role_arn: pulumi.Input[str]
    environment: Mapping[str, pulumi.Input[str]]
    secrets: Mapping[str, pulumi.Input[str]]
    forwarded_allow_ips: str
    stop_timeout_s: int
    graceful_shutdown_s: int
    subnet_ids: pulumi.Input[Sequence[str]]
    security_group_id: pulumi.Input[str]
    target_group_arn: pulumi.Input[str]
    listeners: Sequence[pulumi.Resource]
    desired_count: int
    init_environment: Mapping[str, pulumi.Input[str]] | None = None
    init_secrets: Mapping[str, pulumi.Input[str]] | None = None
    # --- task platform and sidecars (see ops_config.py, observability.py) ---
    cpu_architecture: str = "ARM64"  # runtimePlatform.cpuArchitecture: ARM64 | X86_64
    sidecars: Sequence[pulumi.Input[Mapping[str, Any]]] = ()  # extra container definitions (dicts)


class Service(pulumi.ComponentResource):
    """Outputs: cluster_name, service_name, log_group_name, task_definition_arn."""

    def __init__(self, name: str, args: ServiceArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("claude-proxy:compute:Service", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        cluster = aws.ecs.Cluster(
            f"{name}-cluster",
            name=args.cluster_name,
            settings=[{"name": "containerInsights", "value": "enabled"}],
            opts=child,
        )
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=args.log_group_name,
            retention_in_days=args.log_retention_days,
            kms_key_id=args.log_kms_key_arn,
            opts=child,
        )

        definitions = self._container_definitions(args)
        task_definition = aws.ecs.TaskDefinition(
            f"{name}-task",
            family=args.cluster_name,
            requires_compatibilities=["FARGATE"],
            network_mode="awsvpc",
            cpu=str(args.task_cpu),
            memory=str(args.task_memory_mib),
            runtime_platform={"operating_system_family": "LINUX", "cpu_architecture": args.cpu_architecture},
            task_role_arn=args.task_role_arn,
            execution_role_arn=args.execution_role_arn,
            container_definitions=definitions,
            volumes=[{"name": SCRATCH_VOLUME}],  # task-scoped ephemeral storage mounted at /tmp
            opts=pulumi.ResourceOptions(parent=self, depends_on=[log_group]),
        )
        service = aws.ecs.Service(
            f"{name}-service",
            cluster=cluster.arn,
            task_definition=task_definition.arn,
            launch_type="FARGATE",
            platform_version="LATEST",
            desired_count=args.desired_count,
            deployment_minimum_healthy_percent=100,
            deployment_maximum_percent=200,
            deployment_circuit_breaker={"enable": True, "rollback": True},
            health_check_grace_period_seconds=60,
            availability_zone_rebalancing="ENABLED",
            propagate_tags="SERVICE",
            enable_ecs_managed_tags=True,
            network_configuration={
                "subnets": args.subnet_ids,
                "security_groups": [args.security_group_id],
                "assign_public_ip": False,
            },
            load_balancers=[
                {
                    "target_group_arn": args.target_group_arn,
                    "container_name": CONTAINER_NAME,
                    "container_port": CONTAINER_PORT,
                }
            ],
            # Autoscaling owns the running count after creation; `pulumi up` must not reset it.
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.listeners), ignore_changes=["desired_count"]),
        )

        self.cluster_name = cluster.name
        self.service_name = service.name
        self.log_group_name = log_group.name
        self.task_definition_arn = task_definition.arn
        self.register_outputs(
            {
                "cluster_name": self.cluster_name,
                "service_name": self.service_name,
                "log_group_name": self.log_group_name,
                "task_definition_arn": self.task_definition_arn,
            }
        )

    @staticmethod
    def _container_definitions(args: ServiceArgs) -> pulumi.Output[str]:
        """The task's containers as JSON: ``db-init`` (when configured), the proxy, which starts
        only after ``db-init`` exited 0, then the sidecars as given."""
        env_names = sorted(args.environment)
        secret_names = sorted(args.secrets)
        init_env = dict(args.init_environment or {})
        init_secrets = dict(args.init_secrets or {})
        with_init = args.init_secrets is not None
        init_env_names, init_secret_names = sorted(init_env), sorted(init_secrets)
        values: list[pulumi.Input[Any]] = [
            args.image,
            pulumi.Output.all(*args.sidecars),
            *[args.environment[n] for n in env_names],
            *[args.secrets[n] for n in secret_names],
            *[init_env[n] for n in init_env_names],
            *[init_secrets[n] for n in init_secret_names],
        ]

        def render(v: list[Any]) -> str:
            image, sidecars, rest = v[0], v[1], iter(v[2:])

            def take(names: list[str]) -> dict[str, str]:
                return {n: next(rest) for n in names}

            environment, secrets = take(env_names), take(secret_names)
            proxy = container_definition(
                ContainerSpec(
                    image=image,
                    environment=environment,
                    secrets=secrets,
                    log_group_name=args.log_group_name,
                    region=args.region,
                    forwarded_allow_ips=args.forwarded_allow_ips,
                    stop_timeout_s=args.stop_timeout_s,
                    graceful_shutdown_s=args.graceful_shutdown_s,
                    depends_on_success=(DB_INIT_CONTAINER_NAME,) if with_init else (),
                )
            )
            if not with_init:
                return json.dumps([proxy, *sidecars])
            init = db_init_container_definition(
                DbInitSpec(
                    image=image,
                    environment=take(init_env_names),
                    secrets=take(init_secret_names),
                    log_group_name=args.log_group_name,
                    region=args.region,
                )
            )
            return json.dumps([init, proxy, *sidecars])

        return pulumi.Output.all(*values).apply(render)
