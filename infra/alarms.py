"""Alarms to an SNS topic (e-mail subscription when ``alarmEmail`` is set):

- ALB 5xx (the load balancer's own) and target 5xx (the proxy's), unhealthy targets;
- Bedrock fallback rate, from two log metric filters over the proxy's one-JSON-line-per-request log
  (``provider`` is ``anthropic`` or ``bedrock``; a fallback logs ``"provider": "bedrock"``);
- DocumentDB CPU and connections per instance; task memory;
- no healthy target at all (the ALB then answers every request with 503);
- from the app's own metrics (``observability.py``: CloudWatch agent sidecar, namespace
  ``ECS/ContainerInsights/Prometheus``): upstream 5xx share (Anthropic 529/500/502/503/504 that
  triggered a fallback, over all requests), usage queue depth, dead-lettered and dropped usage
  events, and the metrics pipeline itself going silent;
- p99 time to first byte of streamed requests, from the request log (``ttft_ms``): the agent drops
  Prometheus histograms, and the log line gives CloudWatch every request as a sample. It is the
  proxy's added latency plus Anthropic's (or Bedrock's) own time to first token: the app does not
  measure its overhead alone, so a rise here is read together with the fallback and upstream panels.

Thresholds are starting points, documented in docs/deploy.md; tune them per stack.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra import observability as m  # the metric names the sidecar publishes

#: JSON filter patterns (docs.aws.amazon.com/AmazonCloudWatch/latest/logs/FilterAndPatternSyntax.html).
FALLBACK_PATTERN = '{ $.provider = "bedrock" }'
TTFT_PATTERN = "{ $.ttft_ms > 0 }"
REQUEST_PATTERN = '{ ($.provider = "anthropic") || ($.provider = "bedrock") }'
#: Connection limit per DocumentDB instance size (docs.aws.amazon.com/documentdb/latest/developerguide/limits.html).
DOCDB_CONNECTION_LIMITS = {
    "medium": 500,
    "large": 1700,
    "xlarge": 3400,
    "2xlarge": 6800,
    "4xlarge": 13600,
    "8xlarge": 27200,
}
DOCDB_MAX_CONNECTIONS = 30000


def docdb_connection_alarm_threshold(instance_class: str, percent: int = 80) -> int:
    """``percent`` of the instance size's connection limit (``db.t4g.medium`` -> 400 at 80 %)."""
    size = instance_class.rsplit(".", 1)[-1]
    return DOCDB_CONNECTION_LIMITS.get(size, DOCDB_MAX_CONNECTIONS) * percent // 100


@dataclass(frozen=True)
class AlarmsArgs:
    """Dimensions of the watched resources. ``metric_namespace`` holds the log-derived metrics;
    ``fallback_rate_percent`` is the share of requests served by Bedrock that raises the alarm."""

    alarm_email: str | None
    kms_key_arn: pulumi.Input[str]
    log_group_name: pulumi.Input[str]
    metric_namespace: str
    fallback_rate_percent: int
    alb_arn_suffix: pulumi.Input[str]
    target_group_arn_suffix: pulumi.Input[str]
    cluster_name: pulumi.Input[str]
    service_name: pulumi.Input[str]
    docdb_instance_identifiers: Sequence[str]
    docdb_instance_class: str
    # --- from the app's Prometheus metrics and the request log (see the module docstring) ---
    prometheus_namespace: str = "ECS/ContainerInsights/Prometheus"
    prometheus_cluster: str = ""
    upstream_5xx_percent: int = 10
    ttft_p99_ms: int = 20_000
    usage_queue_depth: int = 1000


class Alarms(pulumi.ComponentResource):
    """Outputs: topic_arn, alarm_names."""

    def __init__(self, name: str, args: AlarmsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("claude-proxy:ops:Alarms", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        topic = aws.sns.Topic(f"{name}-topic", kms_master_key_id=args.kms_key_arn, opts=child)
        if args.alarm_email is not None:
            aws.sns.TopicSubscription(
                f"{name}-email", topic=topic.arn, protocol="email", endpoint=args.alarm_email, opts=child
            )
        actions = [topic.arn]
        alarms: list[aws.cloudwatch.MetricAlarm] = []

        def alarm(key: str, description: str, missing: str = "notBreaching", **kwargs: object) -> None:
            alarms.append(
                aws.cloudwatch.MetricAlarm(
                    f"{name}-{key}",
                    alarm_description=description,
                    alarm_actions=actions,
                    ok_actions=actions,
                    # no traffic or no instance data is not an incident, unless `missing` says so
                    treat_missing_data=missing,
                    opts=child,
                    **kwargs,  # type: ignore[arg-type]
                )
            )

        alb = {"LoadBalancer": args.alb_arn_suffix}
        alarm(
            "alb-5xx",
            "The load balancer itself answered 5xx (no healthy target, timeouts)",
            namespace="AWS/ApplicationELB",
            metric_name="HTTPCode_ELB_5XX_Count",
            dimensions=alb,
            statistic="Sum",
            period=300,
            evaluation_periods=1,
            threshold=10,
            comparison_operator="GreaterThanThreshold",
        )
        alarm(
            "target-5xx",
            "The proxy answered 5xx",
            namespace="AWS/ApplicationELB",
            metric_name="HTTPCode_Target_5XX_Count",
            dimensions=alb,
            statistic="Sum",
            period=300,
            evaluation_periods=1,
            threshold=10,
            comparison_operator="GreaterThanThreshold",
        )
        alarm(
            "unhealthy-hosts",
            "A proxy task fails its /health check",
            namespace="AWS/ApplicationELB",
            metric_name="UnHealthyHostCount",
            dimensions={**alb, "TargetGroup": args.target_group_arn_suffix},
            statistic="Maximum",
            period=60,
            evaluation_periods=3,
            threshold=0,
            comparison_operator="GreaterThanThreshold",
        )

        for key, pattern, metric in (
            ("fallbacks", FALLBACK_PATTERN, "BedrockFallbacks"),
            ("requests", REQUEST_PATTERN, "ProxiedRequests"),
        ):
            aws.cloudwatch.LogMetricFilter(
                f"{name}-{key}",
                log_group_name=args.log_group_name,
                pattern=pattern,
                metric_transformation={
                    "name": metric,
                    "namespace": args.metric_namespace,
                    "value": "1",
                    "unit": "Count",
                },
                opts=child,
            )

        def log_metric(query_id: str, metric: str) -> dict[str, object]:
            return {
                "id": query_id,
                "return_data": False,
                "metric": {"namespace": args.metric_namespace, "metric_name": metric, "period": 300, "stat": "Sum"},
            }

        alarm(
            "fallback-rate",
            f"More than {args.fallback_rate_percent}% of requests fell back to Bedrock",
            evaluation_periods=3,
            datapoints_to_alarm=2,
            threshold=args.fallback_rate_percent,
            comparison_operator="GreaterThanThreshold",
            metric_queries=[
                log_metric("fallbacks", "BedrockFallbacks"),
                log_metric("requests", "ProxiedRequests"),
                {
                    "id": "rate",
                    "label": "Bedrock fallback %",
                    "return_data": True,
                    "expression": "IF(requests > 0, 100 * fallbacks / requests, 0)",
                },
            ],
        )

        connections = docdb_connection_alarm_threshold(args.docdb_instance_class)
        for instance in args.docdb_instance_identifiers:
            dims = {"DBInstanceIdentifier": instance}
            alarm(
                f"{instance}-cpu",
                f"DocumentDB {instance} CPU above 80%",
                namespace="AWS/DocDB",
                metric_name="CPUUtilization",
                dimensions=dims,
                statistic="Average",
                period=300,
                evaluation_periods=3,
                threshold=80,
                comparison_operator="GreaterThanThreshold",
            )
            alarm(
                f"{instance}-connections",
                f"DocumentDB {instance} above 80% of its connection limit",
                namespace="AWS/DocDB",
                metric_name="DatabaseConnections",
                dimensions=dims,
                statistic="Maximum",
                period=300,
                evaluation_periods=2,
                threshold=connections,
                comparison_operator="GreaterThanThreshold",
            )

        alarm(
            "task-memory",
            "Proxy tasks above 85% of their memory",
            namespace="AWS/ECS",
            metric_name="MemoryUtilization",
            dimensions={"ClusterName": args.cluster_name, "ServiceName": args.service_name},
            statistic="Maximum",
            period=60,
            evaluation_periods=3,
            threshold=85,
            comparison_operator="GreaterThanThreshold",
        )

        app_alarms(name, args, alarm, child)

        self.topic_arn = topic.arn
        self.alarm_names = pulumi.Output.all(*[a.name for a in alarms])
        self.register_outputs({"topic_arn": self.topic_arn, "alarm_names": self.alarm_names})


#: Fallback reasons (app/proxy/fallback.py) that mean "Anthropic answered 5xx/529".
UPSTREAM_5XX_REASONS = ("overloaded", "server_error_500", "server_error_502", "server_error_503", "server_error_504")


def app_alarms(name: str, args: AlarmsArgs, alarm: Callable[..., None], child: pulumi.ResourceOptions) -> None:
    """Alarms on the app's own metrics and on target health (see the module docstring)."""
    alarm(
        "no-healthy-targets",
        "No proxy task is healthy: the load balancer answers every request with 503",
        missing="breaching",
        namespace="AWS/ApplicationELB",
        metric_name="HealthyHostCount",
        dimensions={"LoadBalancer": args.alb_arn_suffix, "TargetGroup": args.target_group_arn_suffix},
        statistic="Minimum",
        period=60,
        evaluation_periods=2,
        threshold=1,
        comparison_operator="LessThanThreshold",
    )
    cluster = {"ClusterName": args.prometheus_cluster}

    def app_metric(query_id: str, metric: str, extra: dict[str, str] | None = None) -> dict[str, object]:
        return {
            "id": query_id,
            "return_data": False,
            "metric": {
                "namespace": args.prometheus_namespace,
                "metric_name": metric,
                "dimensions": {**cluster, **(extra or {})},
                "period": 300,
                "stat": "Sum",
            },
        }

    reasons = [app_metric(f"r{i}", m.FALLBACKS, {"reason": r}) for i, r in enumerate(UPSTREAM_5XX_REASONS)]
    alarm(
        "upstream-5xx-share",
        f"More than {args.upstream_5xx_percent}% of requests met a 5xx/529 from Anthropic",
        evaluation_periods=3,
        datapoints_to_alarm=2,
        threshold=args.upstream_5xx_percent,
        comparison_operator="GreaterThanThreshold",
        metric_queries=[
            *reasons,
            app_metric("requests", m.REQUESTS),
            {
                "id": "share",
                "label": "Upstream 5xx %",
                "return_data": True,
                "expression": f"IF(requests > 0, 100 * ({' + '.join(q['id'] for q in reasons)}) / requests, 0)",
            },
        ],
    )
    alarm(
        "usage-queue-depth",
        f"Usage events are piling up (more than {args.usage_queue_depth} waiting): the store is slow or down",
        namespace=args.prometheus_namespace,
        metric_name=m.USAGE_QUEUE_DEPTH,
        dimensions=cluster,
        statistic="Maximum",
        period=60,
        evaluation_periods=5,
        datapoints_to_alarm=3,
        threshold=args.usage_queue_depth,
        comparison_operator="GreaterThanThreshold",
    )
    for key, metric, what in (
        ("usage-dead-lettered", m.USAGE_DEAD_LETTERED, "Usage events were dead-lettered (not written to the store)"),
        ("usage-dropped", m.USAGE_EVENTS_DROPPED, "Usage events were dropped: the usage queue was full"),
    ):
        alarm(
            key,
            what,
            namespace=args.prometheus_namespace,
            metric_name=metric,
            dimensions=cluster,
            statistic="Sum",
            period=300,
            evaluation_periods=1,
            threshold=0,
            comparison_operator="GreaterThanThreshold",
        )
    alarm(
        "metrics-missing",
        "The app's metrics stopped arriving (metrics sidecar down or misconfigured): the alarms above are blind",
        missing="breaching",
        namespace=args.prometheus_namespace,
        metric_name=m.IN_FLIGHT_REQUESTS,
        dimensions=cluster,
        statistic="SampleCount",
        period=300,
        evaluation_periods=3,
        threshold=1,
        comparison_operator="LessThanThreshold",
    )

    aws.cloudwatch.LogMetricFilter(
        f"{name}-ttft",
        log_group_name=args.log_group_name,
        pattern=TTFT_PATTERN,
        metric_transformation={
            "name": "TimeToFirstByte",
            "namespace": args.metric_namespace,
            "value": "$.ttft_ms",
            "unit": "Milliseconds",
        },
        opts=child,
    )
    alarm(
        "ttft-p99",
        f"p99 time to first byte of streamed requests above {args.ttft_p99_ms} ms (proxy + upstream)",
        namespace=args.metric_namespace,
        metric_name="TimeToFirstByte",
        extended_statistic="p99",
        period=300,
        evaluation_periods=3,
        datapoints_to_alarm=2,
        threshold=args.ttft_p99_ms,
        comparison_operator="GreaterThanThreshold",
    )
