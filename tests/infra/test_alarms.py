"""Alarms and the fallback-rate metric over a mocked run."""

from __future__ import annotations

from infra import observability as m
from infra.alarms import docdb_connection_alarm_threshold
from tests.infra.harness import BASE_CONFIG, ProgramRun

ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"


def alarms_by_metric(stack: ProgramRun) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for alarm in stack.of_type(ALARM):
        key = alarm.inputs.get("metricName") or "expression"
        found.setdefault(key, []).append(alarm.inputs)
    return found


def test_every_required_alarm_exists(http_stack: ProgramRun) -> None:
    found = alarms_by_metric(http_stack)
    assert {
        "HTTPCode_ELB_5XX_Count",
        "HTTPCode_Target_5XX_Count",
        "UnHealthyHostCount",
        "CPUUtilization",
        "DatabaseConnections",
        "MemoryUtilization",
        "expression",
        "HealthyHostCount",
        "TimeToFirstByte",
        "claude_proxy_usage_queue_depth",
        "claude_proxy_usage_events_dropped_total",
        "claude_proxy_usage_events_dead_lettered_total",
        "claude_proxy_in_flight_requests",
    } == set(found)
    assert found["CPUUtilization"][0]["namespace"] == "AWS/DocDB"
    assert found["MemoryUtilization"][0]["namespace"] == "AWS/ECS"
    assert found["HTTPCode_ELB_5XX_Count"][0]["dimensions"] == {"LoadBalancer": "app/edge-alb/abc123"}


def test_every_alarm_notifies_the_topic(http_stack: ProgramRun) -> None:
    topic = "arn:aws:sns:us-east-1:123456789012:topic/alarms-topic"
    for alarm in http_stack.of_type(ALARM):
        assert alarm.inputs["alarmActions"] == [topic], alarm.name
    assert http_stack.outputs["alarmTopicArn"] == topic


def test_email_subscription_only_when_configured(http_stack: ProgramRun, https_stack: ProgramRun) -> None:
    assert http_stack.of_type("aws:sns/topicSubscription:TopicSubscription") == []
    subscription = https_stack.one("aws:sns/topicSubscription:TopicSubscription").inputs
    assert (subscription["protocol"], subscription["endpoint"]) == ("email", "ops@example.com")


def test_fallback_rate_comes_from_the_request_log(http_stack: ProgramRun) -> None:
    filters = {
        f.inputs["metricTransformation"]["name"]: f.inputs
        for f in http_stack.of_type("aws:cloudwatch/logMetricFilter:LogMetricFilter")
    }
    assert '$.provider = "bedrock"' in filters["BedrockFallbacks"]["pattern"]
    assert '$.provider = "anthropic"' in filters["ProxiedRequests"]["pattern"]
    assert {f["logGroupName"] for f in filters.values()} == {"/ecs/claude-code-proxy-test"}
    (rate,) = [a for a in alarms_by_metric(http_stack)["expression"] if "Bedrock" in a["alarmDescription"]]
    expression = next(q for q in rate["metricQueries"] if q.get("returnData"))
    assert "fallbacks / requests" in expression["expression"]
    assert rate["threshold"] == 20


def test_one_cpu_and_connection_alarm_per_docdb_instance(run) -> None:
    stack = run({**BASE_CONFIG, "docdbInstanceCount": 3})
    found = alarms_by_metric(stack)
    for metric in ("CPUUtilization", "DatabaseConnections"):
        instances = {a["dimensions"]["DBInstanceIdentifier"] for a in found[metric]}
        assert instances == {f"claude-code-proxy-test-{i}" for i in (1, 2, 3)}
    assert {a["threshold"] for a in found["DatabaseConnections"]} == {400}


def test_connection_threshold_follows_instance_size() -> None:
    assert docdb_connection_alarm_threshold("db.t4g.medium") == 400
    assert docdb_connection_alarm_threshold("db.r6g.2xlarge") == 5440
    assert docdb_connection_alarm_threshold("db.r6g.16xlarge") == 24000


def by_name(stack: ProgramRun, suffix: str) -> dict:
    return stack.named(f"alarms-{suffix}", ALARM).inputs


def test_zero_healthy_targets_alarms_even_without_data(http_stack: ProgramRun) -> None:
    alarm = by_name(http_stack, "no-healthy-targets")
    assert (alarm["metricName"], alarm["statistic"]) == ("HealthyHostCount", "Minimum")
    assert (alarm["comparisonOperator"], alarm["threshold"]) == ("LessThanThreshold", 1)
    assert alarm["treatMissingData"] == "breaching"
    assert alarm["dimensions"] == {"LoadBalancer": "app/edge-alb/abc123", "TargetGroup": "targetgroup/edge-tg/def456"}


def test_upstream_5xx_share_is_server_error_fallbacks_over_requests(http_stack: ProgramRun) -> None:
    alarm = by_name(http_stack, "upstream-5xx-share")
    queries = {q["id"]: q for q in alarm["metricQueries"]}
    reasons = {q["metric"]["dimensions"]["reason"] for q in queries.values() if "metric" in q and q["id"] != "requests"}
    assert reasons == {"overloaded", "server_error_500", "server_error_502", "server_error_503", "server_error_504"}
    assert queries["requests"]["metric"]["metricName"] == m.REQUESTS
    assert all(q["metric"]["namespace"] == m.METRIC_NAMESPACE for q in queries.values() if "metric" in q)
    assert all(q["metric"]["dimensions"]["ClusterName"] == "claude-code-proxy-test" for q in queries.values() if "metric" in q)
    share = queries["share"]
    assert share["returnData"] and "/ requests" in share["expression"] and alarm["threshold"] == 10


def test_usage_pipeline_alarms(http_stack: ProgramRun, run) -> None:
    depth = by_name(http_stack, "usage-queue-depth")
    assert (depth["statistic"], depth["threshold"]) == ("Maximum", 1000)
    for key in ("usage-dead-lettered", "usage-dropped"):
        alarm = by_name(http_stack, key)
        assert (alarm["statistic"], alarm["threshold"], alarm["comparisonOperator"]) == ("Sum", 0, "GreaterThanThreshold")
    silent = by_name(http_stack, "metrics-missing")
    assert silent["treatMissingData"] == "breaching" and silent["statistic"] == "SampleCount"
    tuned = run({**BASE_CONFIG, "usageQueueAlarmDepth": 50, "upstream5xxAlarmPercent": 25})
    assert by_name(tuned, "usage-queue-depth")["threshold"] == 50
    assert by_name(tuned, "upstream-5xx-share")["threshold"] == 25


def test_ttft_p99_comes_from_each_requests_log_line(http_stack: ProgramRun) -> None:
    filters = {
        f.inputs["metricTransformation"]["name"]: f.inputs
        for f in http_stack.of_type("aws:cloudwatch/logMetricFilter:LogMetricFilter")
    }
    ttft = filters["TimeToFirstByte"]
    assert ttft["metricTransformation"]["value"] == "$.ttft_ms" and "$.ttft_ms > 0" in ttft["pattern"]
    alarm = by_name(http_stack, "ttft-p99")
    assert (alarm["extendedStatistic"], alarm["threshold"]) == ("p99", 20000)
    assert alarm["namespace"] == "ClaudeCodeProxy/claude-code-proxy-test"
