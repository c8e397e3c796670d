"""The app's Prometheus metrics in CloudWatch, and the stack's dashboard.

Choice: a **CloudWatch agent sidecar** in the proxy's task scrapes ``127.0.0.1:8080/metrics`` every
30 s and writes the selected series as Embedded Metric Format to a log group, from which CloudWatch
extracts the metrics. Why the sidecar and not EMF from the app: the app keeps one exposition format
(Prometheus) and no AWS code on the request path; gauges that only exist in the process (usage queue
depth, in-flight streams) are read as they are; and the scrape is loopback, which ``/metrics``
allows without a token (with ``metricsToken`` set, the scrape config carrying it is injected from
Secrets Manager). Why the CloudWatch agent and not the ADOT collector: it is AWS's documented path
for ECS Prometheus metrics (config in two environment variables), and counters are sent as deltas.
Its limit: **histograms are dropped** (docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/
ContainerInsights-Prometheus-metrics-conversion.html), so latency percentiles come from the
one-JSON-line-per-request log instead (``alarms.py``), where each request's ``ttft_ms`` is a sample.

Metrics land in :data:`METRIC_NAMESPACE` with the dimension ``ClusterName`` (``reason`` too for
fallbacks). Sources: docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/ContainerInsights-Prometheus-Setup-configure-ECS.html
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.container import CONTAINER_NAME, CONTAINER_PORT

SIDECAR_NAME = "metrics-agent"
SCRAPE_JOB = "claude-code-proxy"
SCRAPE_INTERVAL = "30s"
#: Where the CloudWatch agent puts ECS Prometheus metrics (its fixed namespace for ECS).
METRIC_NAMESPACE = "ECS/ContainerInsights/Prometheus"
#: Names as /metrics exposes them (app/usage/metrics.py, prefix ``claude_proxy_``).
IN_FLIGHT_REQUESTS = "claude_proxy_in_flight_requests"
IN_FLIGHT_STREAMS = "claude_proxy_in_flight_streams"
USAGE_QUEUE_DEPTH = "claude_proxy_usage_queue_depth"
USAGE_WRITE_FAILURES = "claude_proxy_usage_write_failures_total"
USAGE_EVENTS_DROPPED = "claude_proxy_usage_events_dropped_total"
USAGE_DEAD_LETTERED = "claude_proxy_usage_events_dead_lettered_total"
REQUESTS = "claude_proxy_requests_total"
FALLBACKS = "claude_proxy_fallbacks_total"
QUOTA_REJECTIONS = "claude_proxy_quota_rejections_total"
#: Published per cluster (all tasks' samples together: Average = per task, Sum = whole service).
SERVICE_METRICS = (
    IN_FLIGHT_REQUESTS,
    IN_FLIGHT_STREAMS,
    USAGE_QUEUE_DEPTH,
    USAGE_WRITE_FAILURES,
    USAGE_EVENTS_DROPPED,
    USAGE_DEAD_LETTERED,
    REQUESTS,
    FALLBACKS,
    QUOTA_REJECTIONS,
)
#: Published per cluster and ``reason`` (rate_limited, overloaded, server_error_5xx, timeout ...).
PER_REASON_METRICS = (FALLBACKS,)


def prometheus_scrape_config(cluster_name: str, metrics_token: str | None) -> str:
    """The Prometheus scrape config (JSON, which is YAML) for ``PROMETHEUS_CONFIG_CONTENT``: the app
    on loopback, labelled ``ClusterName``. With a token, the scrape sends ``Authorization: Bearer``."""
    job: dict[str, Any] = {
        "job_name": SCRAPE_JOB,
        "metrics_path": "/metrics",
        "scrape_interval": SCRAPE_INTERVAL,
        "scrape_timeout": "10s",
        "static_configs": [{"targets": [f"127.0.0.1:{CONTAINER_PORT}"], "labels": {"ClusterName": cluster_name}}],
    }
    if metrics_token is not None:
        job["authorization"] = {"type": "Bearer", "credentials": metrics_token}
    return json.dumps({"global": {"scrape_interval": SCRAPE_INTERVAL}, "scrape_configs": [job]})


def _selectors(names: tuple[str, ...]) -> list[str]:
    return [f"^{name}$" for name in names]


def agent_config(region: str, emf_log_group_name: str) -> dict[str, Any]:
    """``CW_CONFIG_CONTENT``: Prometheus (config from the environment) -> EMF in ``emf_log_group_name``."""
    matcher = {"source_labels": ["job"], "label_matcher": f"^{SCRAPE_JOB}$"}
    return {
        "agent": {"region": region},
        "logs": {
            "metrics_collected": {
                "prometheus": {
                    "log_group_name": emf_log_group_name,
                    "prometheus_config_path": "env:PROMETHEUS_CONFIG_CONTENT",
                    "emf_processor": {
                        "metric_declaration": [
                            {
                                **matcher,
                                "dimensions": [["ClusterName"]],
                                "metric_selectors": _selectors(SERVICE_METRICS),
                            },
                            {
                                **matcher,
                                "dimensions": [["ClusterName", "reason"]],
                                "metric_selectors": _selectors(PER_REASON_METRICS),
                            },
                        ]
                    },
                }
            },
            "force_flush_interval": 5,
        },
    }


@dataclass(frozen=True)
class SidecarSpec:
    """Resolved inputs of the sidecar's container definition. ``scrape_config_secret_arn``: when set,
    ``PROMETHEUS_CONFIG_CONTENT`` comes from that secret (it holds the metrics token), else ``scrape_config``."""

    image: str
    region: str
    emf_log_group_name: str
    app_log_group_name: str
    scrape_config: str | None
    scrape_config_secret_arn: str | None


def sidecar_definition(spec: SidecarSpec) -> dict[str, Any]:
    """The CloudWatch agent container: not essential (a metrics failure never stops the proxy),
    started once the proxy is healthy, memory capped at 256 MiB, all capabilities dropped, its own
    log lines in the app's log group under the ``metrics-agent`` prefix. Raises ValueError unless
    exactly one of ``scrape_config`` / ``scrape_config_secret_arn`` is given."""
    if (spec.scrape_config is None) == (spec.scrape_config_secret_arn is None):
        raise ValueError("give the scrape config either in clear (no token) or as a secret ARN (token)")
    environment = [
        {"name": "CW_CONFIG_CONTENT", "value": json.dumps(agent_config(spec.region, spec.emf_log_group_name))}
    ]
    secrets = []
    if spec.scrape_config is not None:
        environment.append({"name": "PROMETHEUS_CONFIG_CONTENT", "value": spec.scrape_config})
    else:
        secrets.append({"name": "PROMETHEUS_CONFIG_CONTENT", "valueFrom": spec.scrape_config_secret_arn})
    return {
        "name": SIDECAR_NAME,
        "image": spec.image,
        "essential": False,
        "memory": 256,
        "environment": environment,
        "secrets": secrets,
        "dependsOn": [{"containerName": CONTAINER_NAME, "condition": "HEALTHY"}],
        "linuxParameters": {"initProcessEnabled": True, "capabilities": {"drop": ["ALL"]}},
        "logConfiguration": {
            "logDriver": "awslogs",
            "options": {
                "awslogs-group": spec.app_log_group_name,
                "awslogs-region": spec.region,
                "awslogs-stream-prefix": SIDECAR_NAME,
                "mode": "non-blocking",
            },
        },
    }


def publish_policy(emf_log_group_arn: str) -> dict[str, Any]:
    """Task-role statement for the agent: write EMF to its one log group, nothing else."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "PublishPrometheusMetricsAsEmf",
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                "Resource": [emf_log_group_arn, f"{emf_log_group_arn}:*"],
            }
        ],
    }


@dataclass(frozen=True)
class MetricsPipelineArgs:
    """``metrics_token``: the app's ``PROMETHEUS_METRICS_TOKEN`` (secret Output) or None."""

    cluster_name: str
    region: str
    image: str
    app_log_group_name: str
    kms_key_arn: pulumi.Input[str]
    metrics_token: pulumi.Output[str] | None
    secret_recovery_window_days: int
    emf_retention_days: int  # metrics are extracted on ingestion; the EMF lines are a record only


class MetricsPipeline(pulumi.ComponentResource):
    """The EMF log group, the sidecar's container definition and, with a token, the secret holding its
    scrape config. Call :meth:`allow_publishing` with the task role once it exists.
    Outputs: container_definition (dict), execution_secret_arns (env name -> ARN, for the execution role)."""

    def __init__(self, name: str, args: MetricsPipelineArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("claude-proxy:ops:MetricsPipeline", name, None, opts)
        self._name = name
        child = pulumi.ResourceOptions(parent=self)
        self._emf = aws.cloudwatch.LogGroup(
            f"{name}-emf",
            name=f"/ecs/{args.cluster_name}/metrics",
            retention_in_days=args.emf_retention_days,
            kms_key_id=args.kms_key_arn,
            opts=child,
        )
        self.execution_secret_arns: Mapping[str, pulumi.Input[str]] = {}
        scrape: pulumi.Output[str | None] = pulumi.Output.from_input(None)
        secret_arn: pulumi.Output[str | None] = pulumi.Output.from_input(None)
        if args.metrics_token is None:
            scrape = pulumi.Output.from_input(prometheus_scrape_config(args.cluster_name, None))
        else:
            secret = aws.secretsmanager.Secret(
                f"{name}-scrape-config",
                description="CloudWatch agent scrape config (holds the /metrics bearer token)",
                kms_key_id=args.kms_key_arn,
                recovery_window_in_days=args.secret_recovery_window_days,
                opts=child,
            )
            aws.secretsmanager.SecretVersion(
                f"{name}-scrape-config",
                secret_id=secret.id,
                secret_string=pulumi.Output.secret(
                    args.metrics_token.apply(lambda token: prometheus_scrape_config(args.cluster_name, token))
                ),
                opts=child,
            )
            secret_arn = secret.arn
            self.execution_secret_arns = {"METRICS_AGENT_SCRAPE_CONFIG": secret.arn}
        self.container_definition: pulumi.Output[dict[str, Any]] = pulumi.Output.all(
            self._emf.name, scrape, secret_arn
        ).apply(
            lambda v: sidecar_definition(
                SidecarSpec(
                    image=args.image,
                    region=args.region,
                    emf_log_group_name=v[0],
                    app_log_group_name=args.app_log_group_name,
                    scrape_config=v[1],
                    scrape_config_secret_arn=v[2],
                )
            )
        )
        self.emf_log_group_name = self._emf.name
        self.register_outputs({"emf_log_group_name": self.emf_log_group_name})

    def allow_publishing(self, task_role_arn: pulumi.Input[str]) -> aws.iam.RolePolicy:
        """Attach :func:`publish_policy` to the task role (the agent runs with the task's role)."""
        return aws.iam.RolePolicy(
            f"{self._name}-publish",
            role=pulumi.Output.from_input(task_role_arn).apply(lambda arn: arn.rsplit("/", 1)[-1]),
            policy=self._emf.arn.apply(lambda arn: json.dumps(publish_policy(arn))),
            opts=pulumi.ResourceOptions(parent=self),
        )
