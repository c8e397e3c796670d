"""Autoscaling of the ECS service on what limits a streaming proxy: concurrency, not CPU alone.

A Claude Code turn holds a connection (and, streamed, an SSE response) for seconds to minutes while
using little CPU, so CPU and even requests per minute lag behind the real load. Three
target-tracking policies on one scalable target; ECS scales out when any asks and in only when all
agree (docs.aws.amazon.com/autoscaling/application/userguide/application-auto-scaling-target-tracking.html):

- **in-flight proxy requests per task** (``claude_proxy_in_flight_requests``, Average over all
  tasks' scrapes, from the metrics sidecar): the primary signal;
- ALB ``RequestCountPerTarget`` per minute: catches bursts of short requests (count_tokens);
- average CPU: a guard for translation-heavy Bedrock fallbacks.

Scale-in is slow (300 s cooldown) because a task leaving drains for up to ``deregistrationDelayS``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra import observability as m

SCALE_IN_COOLDOWN_S = 300
SCALE_OUT_COOLDOWN_S = 60


def concurrency_metric(cluster_name: str) -> dict[str, Any]:
    """``customized_metric_specification`` for in-flight requests per task (Average of all samples)."""
    return {
        "namespace": m.METRIC_NAMESPACE,
        "metric_name": m.IN_FLIGHT_REQUESTS,
        "dimensions": [{"name": "ClusterName", "value": cluster_name}],
        "statistic": "Average",
    }


@dataclass(frozen=True)
class AutoscalingArgs:
    """Counts of tasks; ``concurrent_requests_per_task`` in-flight requests; ``requests_per_target``
    ALB requests per task per minute; ``cpu_target_percent`` average CPU %."""

    cluster_name: pulumi.Input[str]
    service_name: pulumi.Input[str]
    min_count: int
    max_count: int
    concurrent_requests_per_task: int
    requests_per_target: int
    cpu_target_percent: int
    request_count_resource_label: pulumi.Input[str]
    metric_cluster_name: str


class Autoscaling(pulumi.ComponentResource):
    """The scalable target and its three target-tracking policies. Outputs: resource_id."""

    def __init__(self, name: str, args: AutoscalingArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("claude-proxy:compute:Autoscaling", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        target = aws.appautoscaling.Target(
            f"{name}-target",
            service_namespace="ecs",
            scalable_dimension="ecs:service:DesiredCount",
            resource_id=pulumi.Output.concat("service/", args.cluster_name, "/", args.service_name),
            min_capacity=args.min_count,
            max_capacity=args.max_count,
            opts=child,
        )

        def track(key: str, target_value: int, metric: dict[str, Any]) -> None:
            aws.appautoscaling.Policy(
                f"{name}-{key}",
                policy_type="TargetTrackingScaling",
                service_namespace=target.service_namespace,
                scalable_dimension=target.scalable_dimension,
                resource_id=target.resource_id,
                target_tracking_scaling_policy_configuration={
                    "target_value": target_value,
                    "scale_in_cooldown": SCALE_IN_COOLDOWN_S,
                    "scale_out_cooldown": SCALE_OUT_COOLDOWN_S,
                    **metric,
                },
                opts=child,
            )

        track(
            "concurrency",
            args.concurrent_requests_per_task,
            {"customized_metric_specification": concurrency_metric(args.metric_cluster_name)},
        )
        track(
            "requests",
            args.requests_per_target,
            {
                "predefined_metric_specification": {
                    "predefined_metric_type": "ALBRequestCountPerTarget",
                    "resource_label": args.request_count_resource_label,
                }
            },
        )
        track(
            "cpu",
            args.cpu_target_percent,
            {"predefined_metric_specification": {"predefined_metric_type": "ECSServiceAverageCPUUtilization"}},
        )
        self.resource_id = target.resource_id
        self.register_outputs({"resource_id": self.resource_id})
