"""Config validation rules (pure): every problem with a ``StackConfig``, as sentences naming the key.

``validate(config)`` returns all problems at once and ``check(config)`` raises them as one
:class:`ConfigError`, so a bad ``Pulumi.<stack>.yaml`` fails before any resource is planned.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from infra.stack_config import StackConfig

#: Claude Code's own client timeout (s); the ALB idle timeout must exceed it or long turns are cut.
CLAUDE_CODE_CLIENT_TIMEOUT_S = 600
#: Fargate caps ``stopTimeout`` at 120 s.
#: Source: docs.aws.amazon.com/AmazonECS/latest/developerguide/task_definition_parameters.html
FARGATE_MAX_STOP_TIMEOUT_S = 120
#: ALB idle timeout range (s).
#: Source: docs.aws.amazon.com/elasticloadbalancing/latest/application/edit-load-balancer-attributes.html
ALB_IDLE_TIMEOUT_RANGE_S = (1, 4000)
#: Target group deregistration delay range (s).
DEREGISTRATION_DELAY_RANGE_S = (0, 3600)

#: Commercial and GovCloud regions known when this was written; extend when AWS opens a new one.
KNOWN_REGIONS = frozenset(
    """
    us-east-1 us-east-2 us-west-1 us-west-2 ca-central-1 ca-west-1 mx-central-1 sa-east-1
    eu-west-1 eu-west-2 eu-west-3 eu-central-1 eu-central-2 eu-north-1 eu-south-1 eu-south-2
    il-central-1 me-south-1 me-central-1 af-south-1 ap-east-1 ap-east-2 ap-south-1 ap-south-2
    ap-northeast-1 ap-northeast-2 ap-northeast-3 ap-southeast-1 ap-southeast-2 ap-southeast-3
    ap-southeast-4 ap-southeast-5 ap-southeast-7 us-gov-west-1 us-gov-east-1
    """.split()
)

#: Fargate task sizes: CPU units -> allowed memory (MiB).
#: Source: docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-tasks-services.html#fargate-tasks-size
FARGATE_TASK_SIZES: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: tuple(range(1024, 4096 + 1, 1024)),
    1024: tuple(range(2048, 8192 + 1, 1024)),
    2048: tuple(range(4096, 16384 + 1, 1024)),
    4096: tuple(range(8192, 30720 + 1, 1024)),
    8192: tuple(range(16384, 61440 + 1, 4096)),
    16384: tuple(range(32768, 122880 + 1, 8192)),
}

#: CloudWatch Logs ``retentionInDays`` values accepted by PutRetentionPolicy.
LOG_RETENTION_DAYS = frozenset(
    {1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653}
)

#: DocumentDB engine versions -> cluster parameter group family.
#: DocumentDB engine versions -> cluster parameter group family.
DOCDB_PARAMETER_FAMILIES = {"4.0.0": "docdb4.0", "5.0.0": "docdb5.0", "8.0.0": "docdb8.0"}

INFERENCE_PROFILE_PREFIXES: tuple[str, ...] = ("us", "eu", "apac", "global")

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_CERT_ARN = re.compile(r"^arn:aws[a-z-]*:acm:(?P<region>[a-z0-9-]+):\d{12}:certificate/[A-Za-z0-9-]+$")
_MODEL_ID = re.compile(r"^[a-z0-9-]+\.[A-Za-z0-9._-]+(:\d+)?(:[0-9a-z]+)?$")
_INSTANCE_CLASS = re.compile(r"^db\.(t3|t4g|r5|r6g|r6gd|r8g)\.(medium|large|\d*xlarge)$")
_IMAGE = re.compile(r"^[a-z0-9][a-z0-9.:-]*(/[a-z0-9._-]+)+(:[A-Za-z0-9._-]+)?(@sha256:[a-f0-9]{64})?$")
_HOSTED_ZONE = re.compile(r"^Z[A-Z0-9]{1,31}$")


class ConfigError(ValueError):
    """Raised by :func:`check` with every problem found, one per line, each naming its config key."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"invalid stack configuration ({len(self.problems)} problem(s)):\n{lines}")


def validate_task_size(cpu: int, memory_mib: int) -> list[str]:
    """Problems with a Fargate CPU/memory pair (CPU units, MiB); empty when the pair is valid."""
    if cpu not in FARGATE_TASK_SIZES:
        allowed = ", ".join(str(c) for c in FARGATE_TASK_SIZES)
        return [f"taskCpu={cpu} is not a Fargate CPU size; use one of {allowed} (1024 = 1 vCPU)"]
    memories = FARGATE_TASK_SIZES[cpu]
    if memory_mib not in memories:
        return [
            f"taskMemory={memory_mib} MiB is not valid with taskCpu={cpu}; Fargate allows "
            f"{memories[0]}..{memories[-1]} MiB in steps of {memories[1] - memories[0] if len(memories) > 1 else 0} "
            f"({', '.join(map(str, memories))})"
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


def check(config: StackConfig) -> None:
    """Raise :class:`ConfigError` listing every problem in ``config``; return None when it is valid."""
    problems = validate(config)
    if problems:
        raise ConfigError(problems)


def validate(config: StackConfig) -> list[str]:  # noqa: C901 - a flat list of independent checks
    """Every problem with ``config`` as readable sentences naming the config key; empty when valid."""
    c = config
    problems: list[str] = []
    if c.region not in KNOWN_REGIONS:
        problems.append(f"aws:region={c.region!r} is not a known AWS region")
    if not 2 <= c.az_count <= 6:
        problems.append(f"azCount={c.az_count}: use 2 to 6 availability zones (the ALB needs at least 2)")
    problems += validate_vpc_cidr(c.vpc_cidr)
    if not 0 <= c.nat_gateways <= c.az_count:
        problems.append(f"natGateways={c.nat_gateways}: use 0 to azCount ({c.az_count})")
    if c.nat_gateways == 0 and not c.vpc_endpoints:
        problems.append(
            "natGateways=0 with vpcEndpoints=false leaves the tasks no way to pull the image, read "
            "secrets or reach Bedrock; set natGateways>=1 or vpcEndpoints=true"
        )
    # database
    if c.docdb_engine_version not in DOCDB_PARAMETER_FAMILIES:
        problems.append(
            f"docdbEngineVersion={c.docdb_engine_version!r}: use one of {', '.join(DOCDB_PARAMETER_FAMILIES)}"
        )
    if not _INSTANCE_CLASS.match(c.docdb_instance_class):
        problems.append(
            f"docdbInstanceClass={c.docdb_instance_class!r} is not a DocumentDB instance class "
            "(e.g. db.t4g.medium, db.r6g.large)"
        )
    if not 1 <= c.docdb_instance_count <= 16:
        problems.append(f"docdbInstanceCount={c.docdb_instance_count}: use 1 (primary) to 16 (primary + 15 replicas)")
    if not 1 <= c.docdb_backup_retention_days <= 35:
        problems.append(f"docdbBackupRetentionDays={c.docdb_backup_retention_days}: use 1 to 35 days")
    if not re.match(r"^[A-Za-z0-9_-]{1,63}$", c.mongodb_database):
        problems.append(f"mongodbDatabase={c.mongodb_database!r}: use 1-63 letters, digits, '_' or '-'")
    # service
    problems += validate_task_size(c.task_cpu, c.task_memory_mib)
    if c.min_count < 1:
        problems.append(f"minCount={c.min_count}: keep at least 1 task running")
    if c.max_count < c.min_count:
        problems.append(f"maxCount={c.max_count} is below minCount={c.min_count}")
    if not c.min_count <= c.desired_count <= c.max_count:
        problems.append(
            f"desiredCount={c.desired_count} must lie within minCount..maxCount ({c.min_count}..{c.max_count})"
        )
    if not 10 <= c.cpu_target_percent <= 90:
        problems.append(f"cpuTargetPercent={c.cpu_target_percent}: use 10 to 90")
    if c.requests_per_target < 1:
        problems.append(
            f"requestsPerTarget={c.requests_per_target}: use a positive request count per target per minute"
        )
    if not 2 <= c.stop_timeout_s <= FARGATE_MAX_STOP_TIMEOUT_S:
        problems.append(f"stopTimeoutS={c.stop_timeout_s}: Fargate allows 2 to {FARGATE_MAX_STOP_TIMEOUT_S} s")
    if c.image is not None and not _IMAGE.match(c.image):
        problems.append(
            f"image={c.image!r} is not an image reference like 123456789012.dkr.ecr.us-east-1.amazonaws.com/proxy:1.0"
        )
    if c.log_level not in LOG_LEVELS:
        problems.append(f"logLevel={c.log_level!r}: use one of {', '.join(LOG_LEVELS)}")
    if c.log_retention_days not in LOG_RETENTION_DAYS:
        allowed = ", ".join(map(str, sorted(LOG_RETENTION_DAYS)))
        problems.append(f"logRetentionDays={c.log_retention_days} is not a CloudWatch retention; use one of {allowed}")
    if not c.admin_username.strip():
        problems.append("adminUsername must not be empty")
    # edge
    high = ALB_IDLE_TIMEOUT_RANGE_S[1]
    if not CLAUDE_CODE_CLIENT_TIMEOUT_S < c.alb_idle_timeout_s <= high:
        problems.append(
            f"albIdleTimeoutS={c.alb_idle_timeout_s}: must be above Claude Code's {CLAUDE_CODE_CLIENT_TIMEOUT_S} s "
            f"client timeout and at most the ALB maximum of {high} s (default 900)"
        )
    low, high = DEREGISTRATION_DELAY_RANGE_S
    if not low <= c.deregistration_delay_s <= high:
        problems.append(f"deregistrationDelayS={c.deregistration_delay_s}: use {low} to {high} s")
    if c.domain_name is not None and not _DOMAIN.match(c.domain_name):
        problems.append(f"domainName={c.domain_name!r} is not a lowercase DNS name like proxy.example.com")
    if c.certificate_arn is not None:
        match = _CERT_ARN.match(c.certificate_arn)
        if not match:
            problems.append(f"certificateArn={c.certificate_arn!r} is not an ACM certificate ARN")
        elif match["region"] != c.region:
            problems.append(
                f"certificateArn is in {match['region']} but the ALB is in {c.region}; "
                "an ALB can only use an ACM certificate from its own region"
            )
        if c.domain_name is None:
            problems.append(
                "certificateArn is set without domainName: set domainName to the name the certificate covers"
            )
    if c.hosted_zone_id is not None:
        if not _HOSTED_ZONE.match(c.hosted_zone_id):
            problems.append(f"hostedZoneId={c.hosted_zone_id!r} is not a Route 53 hosted zone id (Z...)")
        if c.domain_name is None:
            problems.append("hostedZoneId is set without domainName: the alias record needs a name")
    # Bedrock
    problems += _validate_bedrock(c)
    # operations
    if c.alarm_email is not None and not _EMAIL.match(c.alarm_email):
        problems.append(f"alarmEmail={c.alarm_email!r} is not an e-mail address")
    if not 1 <= c.fallback_rate_alarm_percent <= 100:
        problems.append(f"fallbackRateAlarmPercent={c.fallback_rate_alarm_percent}: use 1 to 100")
    return problems


def _validate_bedrock(c: StackConfig) -> list[str]:
    problems: list[str] = []
    prefix = c.bedrock_inference_profile_prefix
    if prefix not in INFERENCE_PROFILE_PREFIXES:
        problems.append(f"bedrockInferenceProfilePrefix={prefix!r}: use one of {', '.join(INFERENCE_PROFILE_PREFIXES)}")
    if c.bedrock_region is not None and c.bedrock_region not in KNOWN_REGIONS:
        problems.append(f"bedrockRegion={c.bedrock_region!r} is not a known AWS region")
    if not c.bedrock_model_ids:
        problems.append("bedrockModelIds is empty: list the Bedrock foundation model ids the proxy may call")
    for model_id in c.bedrock_model_ids:
        if not _MODEL_ID.match(model_id) or "*" in model_id:
            problems.append(
                f"bedrockModelIds: {model_id!r} is not a Bedrock model id "
                "like anthropic.claude-sonnet-4-5-20250929-v1:0"
            )
    for profile_id in c.effective_inference_profile_ids:
        head, _, model_id = profile_id.partition(".")
        if head != prefix:
            problems.append(f"bedrockInferenceProfileIds: {profile_id!r} does not start with the prefix {prefix!r}.")
        elif model_id not in c.bedrock_model_ids:
            problems.append(
                f"bedrockInferenceProfileIds: {profile_id!r} routes to {model_id!r}, which is not in "
                "bedrockModelIds (the role needs the foundation model in every destination region)"
            )
    if c.bedrock_regions is None and prefix in ("eu", "apac"):
        problems.append(
            f"bedrockRegions must be set for the {prefix!r} inference profiles: list their destination "
            "regions (see the model's page in the Bedrock user guide)"
        )
    regions = c.bedrock_regions or ()
    for region in regions:
        if region not in KNOWN_REGIONS:
            problems.append(f"bedrockRegions: {region!r} is not a known AWS region")
    if c.bedrock_regions is not None and not regions:
        problems.append("bedrockRegions is empty: list the destination regions of the inference profiles")
    if prefix != "global" and c.effective_bedrock_region not in c.effective_bedrock_regions:
        problems.append(
            f"bedrockRegion {c.effective_bedrock_region} is not in bedrockRegions "
            f"({', '.join(c.effective_bedrock_regions)}): a source region is always a destination of its profile"
        )
    return problems
