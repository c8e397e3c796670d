"""Stack configuration: one frozen ``StackConfig`` read from ``pulumi config`` and validated up front
by ``infra.validation.check`` (every problem at once, each naming its key).

``load_config()`` and ``load_secrets()`` are the only functions here that touch Pulumi (they read
``pulumi.Config``); secrets (``adminPassword``, ``metricsToken``) stay ``pulumi.Output`` secrets and
never pass through validation.

Every key is documented in docs/deploy.md ("Configuration reference").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from infra.ops_config import OpsConfig, load_ops_config
from infra.validation import DOCDB_PARAMETER_FAMILIES, FARGATE_MAX_STOP_TIMEOUT_S, ConfigError, check

if TYPE_CHECKING:  # pulumi is imported lazily so that this module tests without the engine
    import pulumi

PROJECT = "claude-code-proxy"

#: Destination regions of the geographic inference profiles, used when ``bedrockRegions`` is unset.
#: Only ``us`` has a default: the EU and APAC sets differ per model, so those stacks must list them.
DEFAULT_BEDROCK_REGIONS = {"us": ("us-east-1", "us-east-2", "us-west-1", "us-west-2")}

#: Foundation models the task may invoke by default, Bedrock ids: what current Claude Code asks for
#: (Opus/Sonnet/Haiku 5.5 -- their ids are derived, see docs/translation.md) and the 4.5/4.6 models
#: its model picker still offers. Must match app/bedrock/models.py (tests/infra/test_stack_config.py).
DEFAULT_BEDROCK_MODEL_IDS = (
    "anthropic.claude-opus-5-5",
    "anthropic.claude-sonnet-5-5",
    "anthropic.claude-haiku-5-5",
    "anthropic.claude-opus-4-6-v1",
    "anthropic.claude-sonnet-4-6",
    "anthropic.claude-sonnet-4-5-20250929-v1:0",
    "anthropic.claude-haiku-4-5-20251001-v1:0",
)


@dataclass(frozen=True)
class StackConfig:
    """Every non-secret knob of the stack, in the units its name says (``_s`` seconds, ``_mib`` MiB).

    Defaults are the "dev" sizing priced in docs/deploy.md. ``name`` is the prefix for the few
    resources that need a stable, human-readable name (``<project>-<stack>``, lowercase).
    """

    name: str
    region: str
    # network
    vpc_cidr: str = "10.40.0.0/16"
    az_count: int = 2
    nat_gateways: int = 1
    vpc_endpoints: bool = False
    # database
    docdb_engine_version: str = "5.0.0"
    docdb_instance_class: str = "db.t4g.medium"
    docdb_instance_count: int = 1
    docdb_backup_retention_days: int = 7
    mongodb_database: str = "claude_code_proxy"
    # service
    task_cpu: int = 512
    task_memory_mib: int = 1024
    desired_count: int = 2
    min_count: int = 2
    max_count: int = 6
    cpu_target_percent: int = 60
    requests_per_target: int = 300
    stop_timeout_s: int = FARGATE_MAX_STOP_TIMEOUT_S
    image: str | None = None
    log_level: str = "INFO"
    log_retention_days: int = 30
    admin_username: str = "admin"
    # edge
    domain_name: str | None = None
    certificate_arn: str | None = None
    hosted_zone_id: str | None = None
    alb_idle_timeout_s: int = 900
    deregistration_delay_s: int = 660
    # Bedrock
    bedrock_region: str | None = None  # None: the stack's region
    bedrock_inference_profile_prefix: str = "us"
    bedrock_model_ids: tuple[str, ...] = DEFAULT_BEDROCK_MODEL_IDS
    bedrock_inference_profile_ids: tuple[str, ...] | None = None  # None: prefix + "." + each model id
    bedrock_regions: tuple[str, ...] | None = None  # None: DEFAULT_BEDROCK_REGIONS[prefix]
    # operations
    alarm_email: str | None = None
    fallback_rate_alarm_percent: int = 20
    deletion_protection: bool = True
    final_snapshot: bool = True
    # --- edge extras, metrics, alarms on app metrics, autoscaling, CPU architecture (ops_config.py) ---
    ops: OpsConfig = OpsConfig()

    @property
    def https(self) -> bool:
        """True when an ACM certificate is configured (HTTPS listener + HTTP->HTTPS redirect)."""
        return self.certificate_arn is not None

    @property
    def effective_bedrock_region(self) -> str:
        """The region the app calls Bedrock in (``PROXY_BEDROCK_REGION``): config or the stack region."""
        return self.bedrock_region or self.region

    @property
    def effective_inference_profile_ids(self) -> tuple[str, ...]:
        """Configured profile ids, or ``<prefix>.<model id>`` for every allowed model."""
        if self.bedrock_inference_profile_ids is not None:
            return self.bedrock_inference_profile_ids
        return tuple(f"{self.bedrock_inference_profile_prefix}.{m}" for m in self.bedrock_model_ids)

    @property
    def effective_bedrock_regions(self) -> tuple[str, ...]:
        """Regions the foundation models are allowed in (the profiles' destination regions)."""
        if self.bedrock_regions is not None:
            return self.bedrock_regions
        return DEFAULT_BEDROCK_REGIONS.get(self.bedrock_inference_profile_prefix, (self.effective_bedrock_region,))

    @property
    def graceful_shutdown_s(self) -> int:
        """uvicorn ``--timeout-graceful-shutdown``: 10 s under ``stopTimeout`` so uvicorn exits before SIGKILL."""
        return max(1, self.stop_timeout_s - 10)

    @property
    def docdb_parameter_family(self) -> str:
        """Cluster parameter group family for the engine version (``5.0.0`` -> ``docdb5.0``)."""
        return DOCDB_PARAMETER_FAMILIES[self.docdb_engine_version]


def resource_prefix(project: str, stack: str) -> str:
    """``<project>-<stack>`` reduced to what DocumentDB identifiers accept: lowercase letters, digits
    and single hyphens, starting with a letter, at most 40 characters (room for suffixes)."""
    raw = re.sub(r"[^a-z0-9]+", "-", f"{project}-{stack}".lower()).strip("-")
    if not raw or not raw[0].isalpha():
        raw = f"p-{raw}"
    return raw[:40].rstrip("-")


def _bool(value: str | None, key: str, default: bool) -> bool:
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise ConfigError([f"{key}={value!r} is not a boolean (true/false)"])


def _int(config: pulumi.Config, key: str, default: int) -> int:
    value = config.get(key)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ConfigError([f"{key}={value!r} is not an integer"]) from None


def _strings(config: pulumi.Config, key: str) -> tuple[str, ...] | None:
    import pulumi

    problem = f"{key} must be a list of strings, e.g. pulumi config set --path '{key}[0]' value"
    try:
        value = config.get_object(key)
    except pulumi.ConfigTypeError:
        raise ConfigError([problem]) from None
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError([problem])
    return tuple(value)


def load_config() -> StackConfig:
    """Read the stack's config (namespace ``claude-code-proxy`` plus ``aws:region``), validate it and
    return it. Raises :class:`ConfigError` on any problem. Secrets are read separately with
    :func:`load_secrets`."""
    import pulumi

    cfg = pulumi.Config(PROJECT)
    region = pulumi.Config("aws").get("region")
    if region is None:
        raise ConfigError(["aws:region is not set: pulumi config set aws:region us-east-1"])
    defaults = StackConfig(name="", region=region)
    ops = load_ops_config(cfg)  # raises ConfigError with its own keys' problems
    config = StackConfig(
        name=resource_prefix(pulumi.get_project(), pulumi.get_stack()),
        region=region,
        vpc_cidr=cfg.get("vpcCidr") or defaults.vpc_cidr,
        az_count=_int(cfg, "azCount", defaults.az_count),
        nat_gateways=_int(cfg, "natGateways", defaults.nat_gateways),
        vpc_endpoints=_bool(cfg.get("vpcEndpoints"), "vpcEndpoints", defaults.vpc_endpoints),
        docdb_engine_version=cfg.get("docdbEngineVersion") or defaults.docdb_engine_version,
        docdb_instance_class=cfg.get("docdbInstanceClass") or defaults.docdb_instance_class,
        docdb_instance_count=_int(cfg, "docdbInstanceCount", defaults.docdb_instance_count),
        docdb_backup_retention_days=_int(cfg, "docdbBackupRetentionDays", defaults.docdb_backup_retention_days),
        mongodb_database=cfg.get("mongodbDatabase") or defaults.mongodb_database,
        task_cpu=_int(cfg, "taskCpu", defaults.task_cpu),
        task_memory_mib=_int(cfg, "taskMemory", defaults.task_memory_mib),
        desired_count=_int(cfg, "desiredCount", defaults.desired_count),
        min_count=_int(cfg, "minCount", defaults.min_count),
        max_count=_int(cfg, "maxCount", defaults.max_count),
        cpu_target_percent=_int(cfg, "cpuTargetPercent", defaults.cpu_target_percent),
        requests_per_target=_int(cfg, "requestsPerTarget", defaults.requests_per_target),
        stop_timeout_s=_int(cfg, "stopTimeoutS", defaults.stop_timeout_s),
        image=cfg.get("image") or None,
        log_level=(cfg.get("logLevel") or defaults.log_level).upper(),
        log_retention_days=_int(cfg, "logRetentionDays", defaults.log_retention_days),
        admin_username=cfg.get("adminUsername") or defaults.admin_username,
        domain_name=cfg.get("domainName") or None,
        certificate_arn=cfg.get("certificateArn") or None,
        hosted_zone_id=cfg.get("hostedZoneId") or None,
        alb_idle_timeout_s=_int(cfg, "albIdleTimeoutS", defaults.alb_idle_timeout_s),
        deregistration_delay_s=_int(cfg, "deregistrationDelayS", defaults.deregistration_delay_s),
        bedrock_region=cfg.get("bedrockRegion") or None,
        bedrock_inference_profile_prefix=cfg.get("bedrockInferenceProfilePrefix") or "us",
        bedrock_model_ids=_strings(cfg, "bedrockModelIds") or defaults.bedrock_model_ids,
        bedrock_inference_profile_ids=_strings(cfg, "bedrockInferenceProfileIds"),
        bedrock_regions=_strings(cfg, "bedrockRegions"),
        alarm_email=cfg.get("alarmEmail") or None,
        fallback_rate_alarm_percent=_int(cfg, "fallbackRateAlarmPercent", defaults.fallback_rate_alarm_percent),
        deletion_protection=_bool(cfg.get("deletionProtection"), "deletionProtection", defaults.deletion_protection),
        final_snapshot=_bool(cfg.get("finalSnapshot"), "finalSnapshot", defaults.final_snapshot),
        ops=ops,
    )
    check(config)
    return config


@dataclass(frozen=True)
class StackSecrets:
    """Operator-supplied secrets (``pulumi config set --secret``); ``None`` means "generate one"."""

    admin_password: pulumi.Output[str] | None
    metrics_token: pulumi.Output[str] | None


def load_secrets() -> StackSecrets:
    """Read ``adminPassword`` and ``metricsToken`` as secret Outputs (absent -> None)."""
    import pulumi

    cfg = pulumi.Config(PROJECT)
    return StackSecrets(admin_password=cfg.get_secret("adminPassword"), metrics_token=cfg.get_secret("metricsToken"))
