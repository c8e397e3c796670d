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

from infra.aws_facts import DEFAULT_SSL_POLICY, DOCDB_MAX_CONNECTIONS, DOCDB_PARAMETER_FAMILIES, FARGATE_MAX_STOP_TIMEOUT_S
from infra.ops_config import OpsConfig, load_ops_config
from infra.validation import ConfigError, check

if TYPE_CHECKING:  # pulumi is imported lazily so that this module tests without the engine
    import pulumi

PROJECT = "claude-code-proxy"

#: uvicorn keeps an idle client connection this much longer than the ALB does, so the ALB always
#: closes first and never sends a request on a connection the target is closing (502).
#: Source: docs.aws.amazon.com/elasticloadbalancing/latest/application/application-load-balancers.html#connection-idle-timeout
KEEPALIVE_MARGIN_S = 5
#: Per-instance connections left for operators, the db-init container and a rotation Lambda.
DOCDB_CONNECTION_HEADROOM = 0.1
#: pymongo opens 2 monitoring connections per server besides its pool (pymongo >= 4.0).
PYMONGO_MONITOR_CONNECTIONS = 2
#: pymongo's own default pool size; no task needs more.
MAX_POOL_SIZE_CAP = 100
#: Config keys this version no longer reads, and what replaced them (a stale stack file fails loudly).
REMOVED_KEYS = {
    "bedrockModelIds": "the allowed models now come from the app's model table; add ids with bedrockExtraModelIds",
    "bedrockInferenceProfileIds": "profiles are derived from the app's model table; add ids with bedrockExtraModelIds",
    "bedrockRegions": "destination regions follow the profile geography (infra/aws_facts.py)",
}


@dataclass(frozen=True)
class SsoConfig:
    """The app's own OIDC sign-in (config ``oidcIssuer``, ``oidcClientId``, ``oidcAdminGroups``; the
    client secret is the secret ``oidcClientSecret``). Not the ALB gate ``adminOidc`` below."""

    issuer: str
    client_id: str
    admin_groups: str = ""


@dataclass(frozen=True)
class OidcConfig:
    """ALB ``authenticate-oidc`` in front of the admin paths (config ``adminOidc``). Endpoints are
    https URLs of the identity provider; ``client_secret_arn`` names a Secrets Manager secret whose
    value (plain string) is the OAuth client secret."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    user_info_endpoint: str
    client_id: str
    client_secret_arn: str
    scope: str = "openid email"
    session_timeout_s: int = 12 * 3600


@dataclass(frozen=True)
class StackConfig:
    """Every non-secret knob of the stack, in the units its name says (``_s`` seconds, ``_mib`` MiB).

    Defaults are the "dev" sizing priced in docs/deploy.md. ``name`` is the prefix for every
    resource with an account- or region-unique name (``<project>-<stack>``, lowercase), so two
    stacks of the project can share an account.
    """

    name: str
    region: str
    # network
    vpc_cidr: str = "10.40.0.0/16"
    az_count: int = 2
    nat_gateways: int = 1  # config "single" | "perAz" | "none" (or a number 0..azCount)
    vpc_endpoints: bool = False
    bedrock_runtime_endpoint: bool = False  # only the bedrock-runtime interface endpoint
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
    allow_insecure_http: bool = False
    ssl_policy: str = DEFAULT_SSL_POLICY
    alb_idle_timeout_s: int = 900
    deregistration_delay_s: int = 660
    admin_allowed_cidrs: tuple[str, ...] = ()
    admin_oidc: OidcConfig | None = None
    # Bedrock
    bedrock_region: str | None = None  # None: the stack's region
    bedrock_inference_profile_prefix: str = "us"
    bedrock_extra_model_ids: tuple[str, ...] = ()  # model-map override targets beyond the app's table
    # operations
    alarm_email: str | None = None
    fallback_rate_alarm_percent: int = 20
    deletion_protection: bool = True
    final_snapshot: bool = True
    # --- edge extras, metrics, alarms on app metrics, autoscaling, CPU architecture (ops_config.py) ---
    ops: OpsConfig = OpsConfig()
    # --- single sign-on in the app (issue 17, app/sso; docs/sso.md): PROXY_OIDC_* on the task ---
    sso: SsoConfig | None = None

    @property
    def https(self) -> bool:
        """True when the ALB serves HTTPS: a given ``certificateArn``, or ``domainName`` +
        ``hostedZoneId`` from which the program creates a DNS-validated ACM certificate."""
        return self.certificate_arn is not None or self.creates_certificate

    @property
    def creates_certificate(self) -> bool:
        """True when the program requests and DNS-validates the certificate itself."""
        return self.certificate_arn is None and self.domain_name is not None and self.hosted_zone_id is not None

    @property
    def effective_bedrock_region(self) -> str:
        """The region the app calls Bedrock in (``PROXY_BEDROCK_REGION``): config or the stack region."""
        return self.bedrock_region or self.region

    @property
    def graceful_shutdown_s(self) -> int:
        """uvicorn ``--timeout-graceful-shutdown``: 10 s under ``stopTimeout`` so uvicorn exits before SIGKILL."""
        return max(1, self.stop_timeout_s - 10)

    @property
    def keepalive_timeout_s(self) -> int:
        """uvicorn's keep-alive (``PROXY_KEEPALIVE_TIMEOUT_S``): the ALB idle timeout + a margin."""
        return self.alb_idle_timeout_s + KEEPALIVE_MARGIN_S

    @property
    def docdb_parameter_family(self) -> str:
        """Cluster parameter group family for the engine version (``5.0.0`` -> ``docdb5.0``)."""
        return DOCDB_PARAMETER_FAMILIES[self.docdb_engine_version]

    @property
    def mongodb_max_pool_size(self) -> int:
        """``maxPoolSize`` per task so that ``maxCount`` tasks stay within one instance's connection
        limit: each task holds at most pool + 2 monitoring connections per instance, and 10% of the
        limit stays free. At least 1 and at most 100 (pymongo's default). Raises KeyError for an
        instance class without a known limit (validation reports that first)."""
        budget = int(DOCDB_MAX_CONNECTIONS[self.docdb_instance_class] * (1 - DOCDB_CONNECTION_HEADROOM))
        per_task = budget // max(1, self.max_count) - PYMONGO_MONITOR_CONNECTIONS
        return max(1, min(MAX_POOL_SIZE_CAP, per_task))


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


def _nat_gateways(value: str | None, az_count: int, default: int) -> int:
    """``single`` -> 1, ``perAz`` -> ``az_count``, ``none`` -> 0, or a number (validated later)."""
    if value is None:
        return default
    named = {"single": 1, "peraz": az_count, "none": 0}
    key = value.strip().lower()
    if key in named:
        return named[key]
    try:
        return int(key)
    except ValueError:
        raise ConfigError([f"natGateways={value!r}: use single, perAz or none"]) from None


_OIDC_KEYS = {
    "issuer": "issuer",
    "authorizationEndpoint": "authorization_endpoint",
    "tokenEndpoint": "token_endpoint",
    "userInfoEndpoint": "user_info_endpoint",
    "clientId": "client_id",
    "clientSecretArn": "client_secret_arn",
    "scope": "scope",
    "sessionTimeoutS": "session_timeout_s",
}
_OIDC_REQUIRED = ("issuer", "authorizationEndpoint", "tokenEndpoint", "userInfoEndpoint", "clientId", "clientSecretArn")


def _oidc(config: pulumi.Config) -> OidcConfig | None:
    import pulumi

    problem = f"adminOidc must be an object with {', '.join(_OIDC_REQUIRED)} (optional: scope, sessionTimeoutS)"
    try:
        value = config.get_object("adminOidc")
    except pulumi.ConfigTypeError:
        raise ConfigError([problem]) from None
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) - set(_OIDC_KEYS) or not set(_OIDC_REQUIRED) <= set(value):
        raise ConfigError([problem])
    try:
        return OidcConfig(**{_OIDC_KEYS[k]: (int(v) if k == "sessionTimeoutS" else str(v)) for k, v in value.items()})
    except ValueError:
        raise ConfigError(["adminOidc.sessionTimeoutS must be an integer (seconds)"]) from None


def _sso(config: pulumi.Config) -> SsoConfig | None:
    issuer, client_id = config.get("oidcIssuer") or None, config.get("oidcClientId") or None
    if issuer is None and client_id is None:
        return None
    if issuer is None or client_id is None:
        raise ConfigError(["oidcIssuer and oidcClientId are set together (single sign-on)"])
    if not issuer.startswith("https://"):
        raise ConfigError(["oidcIssuer must be an https:// URL"])
    return SsoConfig(issuer=issuer, client_id=client_id, admin_groups=config.get("oidcAdminGroups") or "")


def load_config() -> StackConfig:
    """Read the stack's config (namespace ``claude-code-proxy`` plus ``aws:region``), validate it and
    return it. Raises :class:`ConfigError` on any problem. Secrets are read separately with
    :func:`load_secrets`."""
    import pulumi

    cfg = pulumi.Config(PROJECT)
    region = pulumi.Config("aws").get("region")
    if region is None:
        raise ConfigError(["aws:region is not set: pulumi config set aws:region us-east-1"])
    stale = [f"{key} is no longer read: {why}" for key, why in REMOVED_KEYS.items() if cfg.get(key) is not None]
    if stale:
        raise ConfigError(stale)
    defaults = StackConfig(name="", region=region)
    ops = load_ops_config(cfg)  # raises ConfigError with its own keys' problems
    az_count = _int(cfg, "azCount", defaults.az_count)
    config = StackConfig(
        name=resource_prefix(pulumi.get_project(), pulumi.get_stack()),
        region=region,
        vpc_cidr=cfg.get("vpcCidr") or defaults.vpc_cidr,
        az_count=az_count,
        nat_gateways=_nat_gateways(cfg.get("natGateways"), az_count, defaults.nat_gateways),
        vpc_endpoints=_bool(cfg.get("vpcEndpoints"), "vpcEndpoints", defaults.vpc_endpoints),
        bedrock_runtime_endpoint=_bool(
            cfg.get("bedrockRuntimeEndpoint"), "bedrockRuntimeEndpoint", defaults.bedrock_runtime_endpoint
        ),
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
        allow_insecure_http=_bool(cfg.get("allowInsecureHttp"), "allowInsecureHttp", defaults.allow_insecure_http),
        ssl_policy=cfg.get("sslPolicy") or defaults.ssl_policy,
        alb_idle_timeout_s=_int(cfg, "albIdleTimeoutS", defaults.alb_idle_timeout_s),
        deregistration_delay_s=_int(cfg, "deregistrationDelayS", defaults.deregistration_delay_s),
        admin_allowed_cidrs=_strings(cfg, "adminAllowedCidrs") or (),
        admin_oidc=_oidc(cfg),
        sso=_sso(cfg),
        bedrock_region=cfg.get("bedrockRegion") or None,
        bedrock_inference_profile_prefix=cfg.get("bedrockInferenceProfilePrefix") or "us",
        bedrock_extra_model_ids=_strings(cfg, "bedrockExtraModelIds") or (),
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
    oidc_client_secret: pulumi.Output[str] | None = None  # config secret oidcClientSecret (app/sso)


def load_secrets() -> StackSecrets:
    """Read ``adminPassword``, ``metricsToken`` and ``oidcClientSecret`` as secret Outputs (absent -> None)."""
    import pulumi

    cfg = pulumi.Config(PROJECT)
    return StackSecrets(admin_password=cfg.get_secret("adminPassword"), metrics_token=cfg.get_secret("metricsToken"),
                        oidc_client_secret=cfg.get_secret("oidcClientSecret"))
