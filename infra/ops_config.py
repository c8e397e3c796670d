"""Config of the edge (access logs, WAF, flow logs), metrics, alarms, autoscaling and CPU architecture:
one frozen ``OpsConfig``, read by :func:`load_ops_config` and checked by :func:`validate_ops`.

Kept apart from ``stack_config.StackConfig``/``validation.py`` (``StackConfig.ops`` holds one of
these) so the two halves of the config evolve without touching each other. Every key is documented
in docs/deploy.md ("Configuration reference").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from infra.validation import ConfigError

if TYPE_CHECKING:  # pulumi is imported lazily so that this module tests without the engine
    import pulumi

#: ECS ``runtimePlatform.cpuArchitecture`` -> the image build platform.
#: Source: docs.aws.amazon.com/AmazonECS/latest/developerguide/task_definition_parameters.html#runtime-platform
CPU_ARCHITECTURES = {"ARM64": "linux/arm64", "X86_64": "linux/amd64"}
#: WAF rate-based rule limits: requests per source IP per evaluation window (5 minutes here).
#: Source: docs.aws.amazon.com/waf/latest/developerguide/waf-rule-statement-type-rate-based-high-level-settings.html
WAF_RATE_LIMIT_RANGE = (10, 2_000_000_000)
#: The CloudWatch agent image the metrics sidecar runs (multi-arch: amd64 and arm64). Pinned by tag:
#: bump it deliberately; resolve it to a digest (``docker buildx imagetools inspect``) to pin harder.
DEFAULT_METRICS_AGENT_IMAGE = "public.ecr.aws/cloudwatch-agent/cloudwatch-agent:1.300042.1b746"


@dataclass(frozen=True)
class OpsConfig:
    """Units in the names (``_days``, ``_ms``, ``_percent``). Defaults are the dev stack's."""

    # edge
    alb_access_logs: bool = True
    alb_access_logs_retention_days: int = 90
    waf: bool = False
    waf_rate_limit: int = 3000  # requests per source IP per 5 minutes
    vpc_flow_logs: bool = False
    # image and task
    cpu_architecture: str = "ARM64"
    metrics_agent_image: str = DEFAULT_METRICS_AGENT_IMAGE
    # autoscaling: in-flight proxy requests per task (streams hold a slot for their whole length)
    concurrent_requests_per_task: int = 100
    # alarms on the app's own metrics
    upstream_5xx_alarm_percent: int = 10
    ttft_p99_alarm_ms: int = 20_000
    usage_queue_alarm_depth: int = 1000

    @property
    def build_platform(self) -> str:
        """``linux/arm64`` or ``linux/amd64``: what the image is built for."""
        return CPU_ARCHITECTURES[self.cpu_architecture]


def validate_ops(c: OpsConfig) -> list[str]:
    """Every problem of ``c``, one sentence each, naming the config key."""
    problems: list[str] = []
    if c.cpu_architecture not in CPU_ARCHITECTURES:
        problems.append(f"cpuArchitecture={c.cpu_architecture!r} must be one of {sorted(CPU_ARCHITECTURES)}")
    if c.alb_access_logs_retention_days < 1:
        problems.append("albAccessLogsRetentionDays must be at least 1")
    low, high = WAF_RATE_LIMIT_RANGE
    if not low <= c.waf_rate_limit <= high:
        problems.append(f"wafRateLimit={c.waf_rate_limit} must be between {low} and {high} (requests per IP per 5 min)")
    if c.concurrent_requests_per_task < 1:
        problems.append("concurrentRequestsPerTask must be at least 1")
    if not 1 <= c.upstream_5xx_alarm_percent <= 100:
        problems.append("upstream5xxAlarmPercent must be between 1 and 100")
    if c.ttft_p99_alarm_ms < 1:
        problems.append("ttftP99AlarmMs must be at least 1")
    if c.usage_queue_alarm_depth < 1:
        problems.append("usageQueueAlarmDepth must be at least 1")
    if not c.metrics_agent_image or any(ch.isspace() for ch in c.metrics_agent_image):
        problems.append("metricsAgentImage must be an image reference without spaces")
    return problems


def _bool(cfg: pulumi.Config, key: str, default: bool, problems: list[str]) -> bool:
    value = cfg.get(key)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    problems.append(f"{key}={value!r} is not a boolean (true/false)")
    return default


def _int(cfg: pulumi.Config, key: str, default: int, problems: list[str]) -> int:
    value = cfg.get(key)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        problems.append(f"{key}={value!r} is not an integer")
        return default


def load_ops_config(cfg: pulumi.Config) -> OpsConfig:
    """Read the keys of :class:`OpsConfig` from the project's config namespace and validate them.
    Raises :class:`ConfigError` with every problem at once."""
    d = OpsConfig()
    problems: list[str] = []
    config = OpsConfig(
        alb_access_logs=_bool(cfg, "albAccessLogs", d.alb_access_logs, problems),
        alb_access_logs_retention_days=_int(
            cfg, "albAccessLogsRetentionDays", d.alb_access_logs_retention_days, problems
        ),
        waf=_bool(cfg, "waf", d.waf, problems),
        waf_rate_limit=_int(cfg, "wafRateLimit", d.waf_rate_limit, problems),
        vpc_flow_logs=_bool(cfg, "vpcFlowLogs", d.vpc_flow_logs, problems),
        cpu_architecture=(cfg.get("cpuArchitecture") or d.cpu_architecture).upper(),
        metrics_agent_image=cfg.get("metricsAgentImage") or d.metrics_agent_image,
        concurrent_requests_per_task=_int(cfg, "concurrentRequestsPerTask", d.concurrent_requests_per_task, problems),
        upstream_5xx_alarm_percent=_int(cfg, "upstream5xxAlarmPercent", d.upstream_5xx_alarm_percent, problems),
        ttft_p99_alarm_ms=_int(cfg, "ttftP99AlarmMs", d.ttft_p99_alarm_ms, problems),
        usage_queue_alarm_depth=_int(cfg, "usageQueueAlarmDepth", d.usage_queue_alarm_depth, problems),
    )
    problems += validate_ops(config)
    if problems:
        raise ConfigError(problems)
    return config
