"""Config of the edge, metrics, alarms, autoscaling and CPU architecture: defaults, parsing, errors."""

from __future__ import annotations

import pytest

from infra.ops_config import OpsConfig, validate_ops
from infra.validation import ConfigError
from tests.infra.harness import BASE_CONFIG, run_program


def test_defaults_are_valid_and_graviton() -> None:
    config = OpsConfig()
    assert validate_ops(config) == []
    assert (config.cpu_architecture, config.build_platform) == ("ARM64", "linux/arm64")
    assert config.alb_access_logs and not config.waf and not config.vpc_flow_logs


@pytest.mark.parametrize(
    ("config", "key"),
    [
        (OpsConfig(cpu_architecture="ARM"), "cpuArchitecture"),
        (OpsConfig(waf_rate_limit=5), "wafRateLimit"),
        (OpsConfig(alb_access_logs_retention_days=0), "albAccessLogsRetentionDays"),
        (OpsConfig(concurrent_requests_per_task=0), "concurrentRequestsPerTask"),
        (OpsConfig(upstream_5xx_alarm_percent=101), "upstream5xxAlarmPercent"),
        (OpsConfig(ttft_p99_alarm_ms=0), "ttftP99AlarmMs"),
        (OpsConfig(usage_queue_alarm_depth=0), "usageQueueAlarmDepth"),
        (OpsConfig(metrics_agent_image="a b"), "metricsAgentImage"),
    ],
)
def test_each_bad_value_is_reported_with_its_key(config: OpsConfig, key: str) -> None:
    (problem,) = validate_ops(config)
    assert key in problem


def test_x86_runs_and_builds_for_amd64(run) -> None:
    stack = run({**BASE_CONFIG, "cpuArchitecture": "x86_64"})
    task = stack.one("aws:ecs/taskDefinition:TaskDefinition").inputs
    assert task["runtimePlatform"] == {"operatingSystemFamily": "LINUX", "cpuArchitecture": "X86_64"}
    assert stack.one("docker-build:index:Image").inputs["platforms"] == ["linux/amd64"]


def test_default_task_and_build_are_arm64(http_stack) -> None:
    task = http_stack.one("aws:ecs/taskDefinition:TaskDefinition").inputs
    assert task["runtimePlatform"]["cpuArchitecture"] == "ARM64"
    assert http_stack.one("docker-build:index:Image").inputs["platforms"] == ["linux/arm64"]


def test_the_image_tag_differs_per_platform(http_stack, run) -> None:
    x86 = run({**BASE_CONFIG, "cpuArchitecture": "X86_64"})
    (arm_tag,) = http_stack.one("docker-build:index:Image").inputs["tags"]
    (x86_tag,) = x86.one("docker-build:index:Image").inputs["tags"]
    assert arm_tag != x86_tag  # an immutable repository would reject the second push under one tag


def test_bad_values_stop_the_program_all_at_once() -> None:
    with pytest.raises(ConfigError) as error:
        run_program({**BASE_CONFIG, "cpuArchitecture": "sparc", "waf": "maybe", "wafRateLimit": "lots"})
    text = str(error.value)
    assert "cpuArchitecture" in text and "waf=" in text and "wafRateLimit" in text
