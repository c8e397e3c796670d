"""The stack's CloudWatch dashboard: traffic and errors at the ALB, concurrency per task against the
scaling target, fallbacks and upstream 5xx, time to first byte, the usage pipeline, tasks and the
database. ``dashboard_body`` is pure (tested as a dict); the component only serialises it.

Body format: docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/CloudWatch-Dashboard-Body-Structure.html
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra import observability as m


@dataclass(frozen=True)
class DashboardSpec:
    """Resolved names: ``log_metric_namespace`` holds the request-log metrics (alarms.py)."""

    region: str
    cluster_name: str
    service_name: str
    alb_arn_suffix: str
    target_group_arn_suffix: str
    log_metric_namespace: str
    app_log_group_name: str
    docdb_instance_identifiers: Sequence[str]
    concurrent_requests_per_task: int


def _graph(
    title: str,
    metrics: list[list[Any]],
    region: str,
    *,
    stat: str = "Sum",
    period: int = 60,
    annotations: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    props: dict[str, Any] = {
        "title": title,
        "region": region,
        "metrics": metrics,
        "stat": stat,
        "period": period,
        "view": "timeSeries",
    }
    if annotations:
        props["annotations"] = {"horizontal": annotations}
    return {"type": "metric", "width": 12, "height": 6, "properties": props}


def dashboard_body(s: DashboardSpec) -> dict[str, Any]:
    """The dashboard as CloudWatch's JSON body (widgets laid out two per row)."""
    alb = ["LoadBalancer", s.alb_arn_suffix]
    tg = [*alb, "TargetGroup", s.target_group_arn_suffix]
    cluster = ["ClusterName", s.cluster_name]
    app = m.METRIC_NAMESPACE
    widgets = [
        _graph(
            "Requests and 5xx at the load balancer",
            [
                ["AWS/ApplicationELB", "RequestCount", *alb],
                ["AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", *alb],
                ["AWS/ApplicationELB", "HTTPCode_ELB_5XX_Count", *alb],
            ],
            s.region,
        ),
        _graph(
            "Healthy / unhealthy tasks",
            [
                ["AWS/ApplicationELB", "HealthyHostCount", *tg],
                ["AWS/ApplicationELB", "UnHealthyHostCount", *tg],
            ],
            s.region,
            stat="Minimum",
        ),
        _graph(
            "In-flight requests and streams per task (scaling target)",
            [
                [app, m.IN_FLIGHT_REQUESTS, *cluster],
                [app, m.IN_FLIGHT_STREAMS, *cluster],
            ],
            s.region,
            stat="Average",
            annotations=[{"label": "scale-out target", "value": s.concurrent_requests_per_task}],
        ),
        _graph(
            "Fallbacks to Bedrock by reason",
            [
                [
                    {
                        "expression": f'SEARCH(\'{{{app},ClusterName,reason}} MetricName="{m.FALLBACKS}" '
                        f"ClusterName=\"{s.cluster_name}\"', 'Sum', 60)",
                        "id": "reasons",
                    }
                ],
                [app, m.REQUESTS, *cluster, {"id": "requests"}],
            ],
            s.region,
        ),
        _graph(
            "Time to first byte, streamed (ms)",
            [
                [s.log_metric_namespace, "TimeToFirstByte", {"stat": "p50"}],
                [s.log_metric_namespace, "TimeToFirstByte", {"stat": "p99"}],
            ],
            s.region,
            stat="p99",
            period=300,
        ),
        _graph(
            "Usage pipeline",
            [
                [app, m.USAGE_QUEUE_DEPTH, *cluster, {"stat": "Maximum"}],
                [app, m.USAGE_WRITE_FAILURES, *cluster],
                [app, m.USAGE_EVENTS_DROPPED, *cluster],
                [app, m.USAGE_DEAD_LETTERED, *cluster],
            ],
            s.region,
        ),
        _graph(
            "Tasks: CPU and memory %",
            [
                ["AWS/ECS", "CPUUtilization", "ClusterName", s.cluster_name, "ServiceName", s.service_name],
                ["AWS/ECS", "MemoryUtilization", "ClusterName", s.cluster_name, "ServiceName", s.service_name],
            ],
            s.region,
            stat="Average",
        ),
        _graph(
            "DocumentDB CPU % and connections",
            [
                *[["AWS/DocDB", "CPUUtilization", "DBInstanceIdentifier", i] for i in s.docdb_instance_identifiers],
                *[
                    ["AWS/DocDB", "DatabaseConnections", "DBInstanceIdentifier", i, {"yAxis": "right"}]
                    for i in s.docdb_instance_identifiers
                ],
            ],
            s.region,
            stat="Maximum",
            period=300,
        ),
        {
            "type": "log",
            "width": 24,
            "height": 6,
            "properties": {
                "title": "Slowest streamed requests (request log)",
                "region": s.region,
                "view": "table",
                "query": (
                    f"SOURCE '{s.app_log_group_name}' | filter ispresent(ttft_ms) "
                    "| stats pct(ttft_ms, 50) as p50, pct(ttft_ms, 99) as p99, count(*) as n by provider, model "
                    "| sort p99 desc | limit 20"
                ),
            },
        },
    ]
    for i, widget in enumerate(widgets):
        widget["x"], widget["y"] = (i % 2) * 12, (i // 2) * 6
    return {"widgets": widgets}


@dataclass(frozen=True)
class OpsDashboardArgs:
    name: str
    region: str
    cluster_name: pulumi.Input[str]
    service_name: pulumi.Input[str]
    alb_arn_suffix: pulumi.Input[str]
    target_group_arn_suffix: pulumi.Input[str]
    log_metric_namespace: str
    app_log_group_name: pulumi.Input[str]
    docdb_instance_identifiers: Sequence[str]
    concurrent_requests_per_task: int


class OpsDashboard(pulumi.ComponentResource):
    """One ``aws.cloudwatch.Dashboard`` named ``<project>-<stack>``. Outputs: dashboard_name."""

    def __init__(self, name: str, args: OpsDashboardArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("claude-proxy:ops:OpsDashboard", name, None, opts)
        body = pulumi.Output.all(
            args.cluster_name,
            args.service_name,
            args.alb_arn_suffix,
            args.target_group_arn_suffix,
            args.app_log_group_name,
        ).apply(
            lambda v: json.dumps(
                dashboard_body(
                    DashboardSpec(
                        region=args.region,
                        cluster_name=v[0],
                        service_name=v[1],
                        alb_arn_suffix=v[2],
                        target_group_arn_suffix=v[3],
                        log_metric_namespace=args.log_metric_namespace,
                        app_log_group_name=v[4],
                        docdb_instance_identifiers=args.docdb_instance_identifiers,
                        concurrent_requests_per_task=args.concurrent_requests_per_task,
                    )
                )
            )
        )
        dashboard = aws.cloudwatch.Dashboard(
            f"{name}-board", dashboard_name=args.name, dashboard_body=body, opts=pulumi.ResourceOptions(parent=self)
        )
        self.dashboard_name = dashboard.dashboard_name
        self.register_outputs({"dashboard_name": self.dashboard_name})
