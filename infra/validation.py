"""Config validation rules (pure): every problem with a ``StackConfig``, as sentences naming the key.

The rules are a table: each :class:`Rule` is one independent check (a predicate that is True when
the config is wrong, and the sentence to show); :data:`CHECKS` holds the few checks that report a
list (CIDRs, ids, task sizes). ``validate(config)`` runs them all and returns every problem at once;
``check(config)`` raises them as one :class:`ConfigError`, so a bad ``Pulumi.<stack>.yaml`` fails
before any resource is planned. AWS limits come from ``infra.aws_facts``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from infra.aws_facts import (
    ALB_IDLE_TIMEOUT_RANGE_S,
    DEREGISTRATION_DELAY_RANGE_S,
    DOCDB_MAX_CONNECTIONS,
    DOCDB_PARAMETER_FAMILIES,
    FARGATE_MAX_STOP_TIMEOUT_S,
    FARGATE_TASK_SIZES,
    INFERENCE_PROFILE_REGION_PATTERNS,
    KNOWN_REGIONS,
    LOG_RETENTION_DAYS,
    TLS13_SSL_POLICIES,
)

if TYPE_CHECKING:
    from infra.stack_config import StackConfig

#: Claude Code's own client timeout (s); the ALB idle timeout must exceed it or long turns are cut.
CLAUDE_CODE_CLIENT_TIMEOUT_S = 600
#: Profile geographies the app's ``PROXY_BEDROCK_INFERENCE_PROFILE_PREFIX`` accepts.
INFERENCE_PROFILE_PREFIXES: tuple[str, ...] = tuple(INFERENCE_PROFILE_REGION_PATTERNS)
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
#: Most admin CIDRs; each listener rule carries a few (see load_balancer.admin_cidr_chunks).
MAX_ADMIN_CIDRS = 30

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_CERT_ARN = re.compile(r"^arn:aws[a-z-]*:acm:(?P<region>[a-z0-9-]+):\d{12}:certificate/[A-Za-z0-9-]+$")
_SECRET_ARN = re.compile(r"^arn:aws[a-z-]*:secretsmanager:(?P<region>[a-z0-9-]+):\d{12}:secret:[\w/+=.@-]+$")
_MODEL_ID = re.compile(r"^[a-z0-9-]+\.[A-Za-z0-9._-]+(:\d+)?(:[0-9a-z]+)?$")
_IMAGE = re.compile(r"^[a-z0-9][a-z0-9.:-]*(/[a-z0-9._-]+)+(:[A-Za-z0-9._-]+)?(@sha256:[a-f0-9]{64})?$")
_HOSTED_ZONE = re.compile(r"^Z[A-Z0-9]{1,31}$")
_DATABASE = re.compile(r"^[A-Za-z0-9_-]{1,63}$")
_HTTPS_URL = re.compile(r"^https://[^\s/]+(/\S*)?$")


class ConfigError(ValueError):
    """Raised by :func:`check` with every problem found, one per line, each naming its config key."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"invalid stack configuration ({len(self.problems)} problem(s)):\n{lines}")


@dataclass(frozen=True)
class Rule:
    """One independent check: ``broken(config)`` is True when the config is wrong, and
    ``message(config)`` is the sentence to show (it names the config key)."""

    broken: Callable[[StackConfig], bool]
    message: Callable[[StackConfig], str]


def _cert_region(arn: str | None) -> str | None:
    match = _CERT_ARN.match(arn or "")
    return match["region"] if match else None


_IDLE_HIGH = ALB_IDLE_TIMEOUT_RANGE_S[1]
_DEREG_LOW, _DEREG_HIGH = DEREGISTRATION_DELAY_RANGE_S

RULES: tuple[Rule, ...] = (
    # network
    Rule(lambda c: c.region not in KNOWN_REGIONS, lambda c: f"aws:region={c.region!r} is not a known AWS region"),
    Rule(
        lambda c: not 2 <= c.az_count <= 6,
        lambda c: f"azCount={c.az_count}: use 2 to 6 availability zones (the ALB needs at least 2)",
    ),
    Rule(
        lambda c: not 0 <= c.nat_gateways <= c.az_count,
        lambda c: f"natGateways={c.nat_gateways}: use single, perAz or none (0 to azCount={c.az_count})",
    ),
    Rule(
        lambda c: c.nat_gateways == 0 and not c.vpc_endpoints,
        lambda c: "natGateways=0 with vpcEndpoints=false leaves the tasks no way to pull the image, read "
        "secrets or reach Bedrock; set natGateways>=1 or vpcEndpoints=true",
    ),
    # database
    Rule(
        lambda c: c.docdb_engine_version not in DOCDB_PARAMETER_FAMILIES,
        lambda c: f"docdbEngineVersion={c.docdb_engine_version!r}: use one of {', '.join(DOCDB_PARAMETER_FAMILIES)} "
        "(4.0 is too old for the app's MongoDB driver)",
    ),
    Rule(
        lambda c: c.docdb_instance_class not in DOCDB_MAX_CONNECTIONS,
        lambda c: f"docdbInstanceClass={c.docdb_instance_class!r} is not a DocumentDB instance class this program "
        "knows the connection limit of (e.g. db.t4g.medium, db.r6g.large; see infra/aws_facts.py)",
    ),
    Rule(
        lambda c: not 1 <= c.docdb_instance_count <= 16,
        lambda c: f"docdbInstanceCount={c.docdb_instance_count}: use 1 (primary) to 16 (primary + 15 replicas)",
    ),
    Rule(
        lambda c: not 1 <= c.docdb_backup_retention_days <= 35,
        lambda c: f"docdbBackupRetentionDays={c.docdb_backup_retention_days}: use 1 to 35 days",
    ),
    Rule(
        lambda c: not _DATABASE.match(c.mongodb_database),
        lambda c: f"mongodbDatabase={c.mongodb_database!r}: use 1-63 letters, digits, '_' or '-'",
    ),
    # service
    Rule(lambda c: c.min_count < 1, lambda c: f"minCount={c.min_count}: keep at least 1 task running"),
    Rule(lambda c: c.max_count < c.min_count, lambda c: f"maxCount={c.max_count} is below minCount={c.min_count}"),
    Rule(
        lambda c: not c.min_count <= c.desired_count <= c.max_count,
        lambda c: f"desiredCount={c.desired_count} must lie within minCount..maxCount ({c.min_count}..{c.max_count})",
    ),
    Rule(lambda c: not 10 <= c.cpu_target_percent <= 90, lambda c: f"cpuTargetPercent={c.cpu_target_percent}: use 10 to 90"),
    Rule(
        lambda c: c.requests_per_target < 1,
        lambda c: f"requestsPerTarget={c.requests_per_target}: use a positive request count per target per minute",
    ),
    Rule(
        lambda c: not 2 <= c.stop_timeout_s <= FARGATE_MAX_STOP_TIMEOUT_S,
        lambda c: f"stopTimeoutS={c.stop_timeout_s}: Fargate allows 2 to {FARGATE_MAX_STOP_TIMEOUT_S} s",
    ),
    Rule(
        lambda c: c.image is not None and not _IMAGE.match(c.image),
        lambda c: f"image={c.image!r} is not an image reference like "
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/proxy@sha256:<64 hex digits>",
    ),
    Rule(lambda c: c.log_level not in LOG_LEVELS, lambda c: f"logLevel={c.log_level!r}: use one of {', '.join(LOG_LEVELS)}"),
    Rule(
        lambda c: c.log_retention_days not in LOG_RETENTION_DAYS,
        lambda c: f"logRetentionDays={c.log_retention_days} is not a CloudWatch retention; use one of "
        f"{', '.join(map(str, sorted(LOG_RETENTION_DAYS)))}",
    ),
    Rule(lambda c: not c.admin_username.strip(), lambda c: "adminUsername must not be empty"),
    # edge
    Rule(
        lambda c: not c.https and not c.allow_insecure_http,
        lambda c: "HTTPS is required: set certificateArn (with domainName), or domainName + hostedZoneId to have "
        "the program create and DNS-validate a certificate; allowInsecureHttp=true serves plain HTTP "
        "(credentials in clear text) for a throwaway stack only",
    ),
    Rule(
        lambda c: c.ssl_policy not in TLS13_SSL_POLICIES,
        lambda c: f"sslPolicy={c.ssl_policy!r}: use a TLS 1.3 policy ({', '.join(TLS13_SSL_POLICIES)})",
    ),
    Rule(
        lambda c: not CLAUDE_CODE_CLIENT_TIMEOUT_S < c.alb_idle_timeout_s <= _IDLE_HIGH,
        lambda c: f"albIdleTimeoutS={c.alb_idle_timeout_s}: must be above Claude Code's "
        f"{CLAUDE_CODE_CLIENT_TIMEOUT_S} s client timeout and at most the ALB maximum of {_IDLE_HIGH} s (default 900)",
    ),
    Rule(
        lambda c: not _DEREG_LOW <= c.deregistration_delay_s <= _DEREG_HIGH,
        lambda c: f"deregistrationDelayS={c.deregistration_delay_s}: use {_DEREG_LOW} to {_DEREG_HIGH} s",
    ),
    Rule(
        lambda c: c.domain_name is not None and not _DOMAIN.match(c.domain_name),
        lambda c: f"domainName={c.domain_name!r} is not a lowercase DNS name like proxy.example.com",
    ),
    Rule(
        lambda c: c.certificate_arn is not None and _cert_region(c.certificate_arn) is None,
        lambda c: f"certificateArn={c.certificate_arn!r} is not an ACM certificate ARN",
    ),
    Rule(
        lambda c: _cert_region(c.certificate_arn) not in (None, c.region),
        lambda c: f"certificateArn is in {_cert_region(c.certificate_arn)} but the ALB is in {c.region}; "
        "an ALB can only use an ACM certificate from its own region",
    ),
    Rule(
        lambda c: c.certificate_arn is not None and c.domain_name is None,
        lambda c: "certificateArn is set without domainName: set domainName to the name the certificate covers",
    ),
    Rule(
        lambda c: c.hosted_zone_id is not None and not _HOSTED_ZONE.match(c.hosted_zone_id),
        lambda c: f"hostedZoneId={c.hosted_zone_id!r} is not a Route 53 hosted zone id (Z...)",
    ),
    Rule(
        lambda c: c.hosted_zone_id is not None and c.domain_name is None,
        lambda c: "hostedZoneId is set without domainName: the alias record needs a name",
    ),
    Rule(
        lambda c: len(c.admin_allowed_cidrs) > MAX_ADMIN_CIDRS,
        lambda c: f"adminAllowedCidrs has {len(c.admin_allowed_cidrs)} entries; use at most {MAX_ADMIN_CIDRS}",
    ),
    Rule(
        lambda c: c.admin_oidc is not None and not c.https,
        lambda c: "adminOidc needs HTTPS: the ALB authenticates only on an HTTPS listener",
    ),
    # Bedrock
    Rule(
        lambda c: c.bedrock_inference_profile_prefix not in INFERENCE_PROFILE_PREFIXES,
        lambda c: f"bedrockInferenceProfilePrefix={c.bedrock_inference_profile_prefix!r}: use one of "
        f"{', '.join(INFERENCE_PROFILE_PREFIXES)}",
    ),
    Rule(
        lambda c: c.bedrock_region is not None and c.bedrock_region not in KNOWN_REGIONS,
        lambda c: f"bedrockRegion={c.bedrock_region!r} is not a known AWS region",
    ),
    # operations
    Rule(
        lambda c: c.alarm_email is not None and not _EMAIL.match(c.alarm_email),
        lambda c: f"alarmEmail={c.alarm_email!r} is not an e-mail address",
    ),
    Rule(
        lambda c: not 1 <= c.fallback_rate_alarm_percent <= 100,
        lambda c: f"fallbackRateAlarmPercent={c.fallback_rate_alarm_percent}: use 1 to 100",
    ),
)


def validate_task_size(cpu: int, memory_mib: int) -> list[str]:
    """Problems with a Fargate CPU/memory pair (CPU units, MiB); empty when the pair is valid."""
    if cpu not in FARGATE_TASK_SIZES:
        allowed = ", ".join(str(c) for c in FARGATE_TASK_SIZES)
        return [f"taskCpu={cpu} is not a Fargate CPU size; use one of {allowed} (1024 = 1 vCPU)"]
    memories = FARGATE_TASK_SIZES[cpu]
    if memory_mib not in memories:
        step = memories[1] - memories[0] if len(memories) > 1 else 0
        return [
            f"taskMemory={memory_mib} MiB is not valid with taskCpu={cpu}; Fargate allows "
            f"{memories[0]}..{memories[-1]} MiB in steps of {step} ({', '.join(map(str, memories))})"
        ]
    return []


def validate_vpc_cidr(cidr: str) -> list[str]:
    """Problems with the VPC CIDR: a private IPv4 network from /16 to /22 with room for 2 subnets per AZ."""
    try:
        network = ipaddress.IPv4Network(cidr, strict=True)
    except ValueError as exc:
        return [f"vpcCidr={cidr!r} is not an IPv4 network in CIDR notation ({exc})"]
    problems = []
    if not network.is_private:
        problems.append(f"vpcCidr={cidr} is not a private (RFC 1918) range")
    if not 16 <= network.prefixlen <= 22:
        problems.append(f"vpcCidr={cidr} must be between /16 and /22 (each subnet is 1/16 of the VPC)")
    return problems


def validate_admin_cidrs(cidrs: Sequence[str]) -> list[str]:
    """Problems with ``adminAllowedCidrs``: each an IPv4 or IPv6 network (``203.0.113.0/24``)."""
    problems = []
    for cidr in cidrs:
        try:
            ipaddress.ip_network(cidr, strict=True)
        except ValueError as exc:
            problems.append(f"adminAllowedCidrs: {cidr!r} is not a network in CIDR notation ({exc})")
    return problems


def validate_extra_model_ids(model_ids: Sequence[str]) -> list[str]:
    """Problems with ``bedrockExtraModelIds``: Bedrock model or inference profile ids, no wildcards."""
    return [
        f"bedrockExtraModelIds: {m!r} is not a Bedrock model or inference profile id like "
        "anthropic.claude-sonnet-4-5-20250929-v1:0 or us.anthropic.claude-sonnet-4-5-20250929-v1:0"
        for m in model_ids
        if not _MODEL_ID.match(m) or "*" in m
    ]


def validate_oidc(c: StackConfig) -> list[str]:
    """Problems with ``adminOidc``: https endpoints, a Secrets Manager ARN in the stack's region."""
    oidc = c.admin_oidc
    if oidc is None:
        return []
    problems = [
        f"adminOidc.{key}={url!r} is not an https URL"
        for key, url in (
            ("issuer", oidc.issuer),
            ("authorizationEndpoint", oidc.authorization_endpoint),
            ("tokenEndpoint", oidc.token_endpoint),
            ("userInfoEndpoint", oidc.user_info_endpoint),
        )
        if not _HTTPS_URL.match(url)
    ]
    match = _SECRET_ARN.match(oidc.client_secret_arn)
    if match is None:
        problems.append(f"adminOidc.clientSecretArn={oidc.client_secret_arn!r} is not a Secrets Manager secret ARN")
    elif match["region"] != c.region:
        problems.append(f"adminOidc.clientSecretArn is in {match['region']}; keep it in the stack's region {c.region}")
    if not oidc.client_id.strip():
        problems.append("adminOidc.clientId must not be empty")
    if not 1 <= oidc.session_timeout_s <= 7 * 24 * 3600:
        problems.append(f"adminOidc.sessionTimeoutS={oidc.session_timeout_s}: use 1 s to 7 days")
    return problems


#: Checks that report a list of problems each (the rest are one-line :data:`RULES`).
CHECKS: tuple[Callable[[StackConfig], list[str]], ...] = (
    lambda c: validate_vpc_cidr(c.vpc_cidr),
    lambda c: validate_task_size(c.task_cpu, c.task_memory_mib),
    lambda c: validate_admin_cidrs(c.admin_allowed_cidrs),
    lambda c: validate_extra_model_ids(c.bedrock_extra_model_ids),
    validate_oidc,
)


def validate(config: StackConfig) -> list[str]:
    """Every problem with ``config`` as readable sentences naming the config key; empty when valid."""
    problems = [rule.message(config) for rule in RULES if rule.broken(config)]
    for check_list in CHECKS:
        problems += check_list(config)
    return problems


def check(config: StackConfig) -> None:
    """Raise :class:`ConfigError` listing every problem in ``config``; return None when it is valid."""
    problems = validate(config)
    if problems:
        raise ConfigError(problems)
