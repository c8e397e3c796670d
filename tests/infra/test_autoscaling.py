"""Autoscaling tracks concurrency per task first, then ALB requests per target and CPU."""

from __future__ import annotations

import json

from infra import observability as m
from tests.infra.harness import BASE_CONFIG


def policies_by_metric(stack) -> dict[str, dict]:
    found = {}
    for policy in stack.of_type("aws:appautoscaling/policy:Policy"):
        config = policy.inputs["targetTrackingScalingPolicyConfiguration"]
        if "customizedMetricSpecification" in config:
            found[config["customizedMetricSpecification"]["metricName"]] = config
        else:
            found[config["predefinedMetricSpecification"]["predefinedMetricType"]] = config
    return found


def test_three_target_tracking_policies_on_one_target(run) -> None:
    stack = run({**BASE_CONFIG, "minCount": 3, "desiredCount": 3, "maxCount": 9, "concurrentRequestsPerTask": 40})
    target = stack.one("aws:appautoscaling/target:Target").inputs
    assert (target["minCapacity"], target["maxCapacity"]) == (3, 9)
    assert target["scalableDimension"] == "ecs:service:DesiredCount"
    policies = policies_by_metric(stack)
    assert set(policies) == {m.IN_FLIGHT_REQUESTS, "ALBRequestCountPerTarget", "ECSServiceAverageCPUUtilization"}
    concurrency = policies[m.IN_FLIGHT_REQUESTS]
    assert concurrency["targetValue"] == 40
    assert concurrency["customizedMetricSpecification"] == {
        "namespace": m.METRIC_NAMESPACE,
        "metricName": m.IN_FLIGHT_REQUESTS,
        "dimensions": [{"name": "ClusterName", "value": "claude-code-proxy-test"}],
        "statistic": "Average",  # over every task's scrapes: in-flight requests per task
    }
    label = policies["ALBRequestCountPerTarget"]["predefinedMetricSpecification"]["resourceLabel"]
    assert label == "app/edge-alb/abc123/targetgroup/edge-tg/def456"
    assert policies["ECSServiceAverageCPUUtilization"]["targetValue"] == 60
    assert all(p["scaleInCooldown"] > p["scaleOutCooldown"] for p in policies.values())


def test_the_scaled_dimension_is_the_one_the_sidecar_labels(http_stack) -> None:
    agent = http_stack.containers()[m.SIDECAR_NAME]
    scrape = json.loads({e["name"]: e["value"] for e in agent["environment"]}["PROMETHEUS_CONFIG_CONTENT"])
    label = scrape["scrape_configs"][0]["static_configs"][0]["labels"]["ClusterName"]
    (dimension,) = policies_by_metric(http_stack)[m.IN_FLIGHT_REQUESTS]["customizedMetricSpecification"]["dimensions"]
    assert dimension == {"name": "ClusterName", "value": label}
