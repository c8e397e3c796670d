"""The dashboard body: the key panels, on the stack's own resources."""

from __future__ import annotations

import json

from infra import observability as m
from infra.dashboard import DashboardSpec, dashboard_body

SPEC = DashboardSpec(
    region="us-east-1",
    cluster_name="c",
    service_name="s",
    alb_arn_suffix="app/a/1",
    target_group_arn_suffix="targetgroup/t/2",
    log_metric_namespace="ClaudeCodeProxy/c",
    app_log_group_name="/ecs/c",
    docdb_instance_identifiers=["c-1", "c-2"],
    concurrent_requests_per_task=100,
)


def metric_names(body: dict) -> set[str]:
    names = set()
    for widget in body["widgets"]:
        for row in widget["properties"].get("metrics", []):
            names |= {x for x in row[1:2] if isinstance(x, str)}
    return names


def test_key_panels_are_there() -> None:
    body = dashboard_body(SPEC)
    titles = " | ".join(w["properties"]["title"] for w in body["widgets"])
    for panel in ("5xx", "Healthy", "In-flight", "Fallbacks", "first byte", "Usage pipeline", "DocumentDB"):
        assert panel in titles
    assert {
        "RequestCount", "HealthyHostCount", m.IN_FLIGHT_REQUESTS, m.IN_FLIGHT_STREAMS, m.USAGE_QUEUE_DEPTH,
        m.USAGE_DEAD_LETTERED, "TimeToFirstByte", "CPUUtilization", "DatabaseConnections",
    } <= metric_names(body)
    concurrency = next(w for w in body["widgets"] if "In-flight" in w["properties"]["title"])
    assert concurrency["properties"]["annotations"]["horizontal"][0]["value"] == 100
    assert sum(1 for w in body["widgets"] if "DocumentDB" in w["properties"]["title"]) == 1
    positions = {(w["x"], w["y"]) for w in body["widgets"]}
    assert len(positions) == len(body["widgets"])  # no two widgets on top of each other


def test_the_stack_creates_the_dashboard_on_its_resources(http_stack) -> None:
    board = http_stack.one("aws:cloudwatch/dashboard:Dashboard").inputs
    assert board["dashboardName"] == "claude-code-proxy-test"
    body = json.loads(board["dashboardBody"])
    flat = json.dumps(body)
    assert "app/edge-alb/abc123" in flat and "targetgroup/edge-tg/def456" in flat
    assert "claude-code-proxy-test-1" in flat and "/ecs/claude-code-proxy-test" in flat
