"""Facts about AWS the program depends on (pure data; no Pulumi, no I/O).

Every table names its source. They change when AWS changes, so they live in one place: the
validation rules (``validation.py``) and the components read them from here.
"""

from __future__ import annotations

# --- regions ---------------------------------------------------------------------------------

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

# --- ECS on Fargate --------------------------------------------------------------------------

#: Fargate caps ``stopTimeout`` at 120 s.
#: Source: docs.aws.amazon.com/AmazonECS/latest/developerguide/task_definition_parameters.html
FARGATE_MAX_STOP_TIMEOUT_S = 120

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

# --- CloudWatch Logs -------------------------------------------------------------------------

#: ``retentionInDays`` values accepted by PutRetentionPolicy.
#: Source: docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutRetentionPolicy.html
LOG_RETENTION_DAYS = frozenset(
    {1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653}
)

# --- Application Load Balancer ---------------------------------------------------------------

#: Idle timeout range (s).
#: Source: docs.aws.amazon.com/elasticloadbalancing/latest/application/edit-load-balancer-attributes.html
ALB_IDLE_TIMEOUT_RANGE_S = (1, 4000)
#: Target group deregistration delay range (s).
DEREGISTRATION_DELAY_RANGE_S = (0, 3600)
#: Condition values per listener rule (path patterns, source IPs, methods ... all count).
#: Source: docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-limits.html
ALB_MAX_CONDITION_VALUES_PER_RULE = 5
#: Rules per listener, not counting the default rule (same page).
ALB_MAX_RULES_PER_LISTENER = 100
#: A fixed-response body is at most 1024 characters.
#: Source: docs.aws.amazon.com/elasticloadbalancing/latest/application/rule-action-types.html
ALB_MAX_FIXED_RESPONSE_BYTES = 1024
#: HTTPS listener security policies with TLS 1.3 (the ``ELBSecurityPolicy-TLS13-*`` family).
#: The default is the restricted-cipher TLS 1.2 + 1.3 policy; the ``-PQ-`` variants add hybrid
#: post-quantum key exchange (newer; not yet in every partition).
#: Source: docs.aws.amazon.com/elasticloadbalancing/latest/application/describe-ssl-policies.html
TLS13_SSL_POLICIES = (
    "ELBSecurityPolicy-TLS13-1-2-Res-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-2021-06",
    "ELBSecurityPolicy-TLS13-1-3-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-Res-PQ-2025-09",
    "ELBSecurityPolicy-TLS13-1-2-PQ-2025-09",
    "ELBSecurityPolicy-TLS13-1-3-PQ-2025-09",
    "ELBSecurityPolicy-TLS13-1-2-FIPS-2023-04",
    "ELBSecurityPolicy-TLS13-1-3-FIPS-2023-04",
)
DEFAULT_SSL_POLICY = "ELBSecurityPolicy-TLS13-1-2-Res-2021-06"

# --- DocumentDB ------------------------------------------------------------------------------

#: Engine version -> cluster parameter group family. 4.0 is left out on purpose: pymongo 4.x needs
#: a 4.2+ wire version (MongoDB 4.4 API); DocumentDB 4.0 speaks 4.0.
#: Source: docs.aws.amazon.com/documentdb/latest/developerguide/cluster_parameter_groups.html
DOCDB_PARAMETER_FAMILIES = {"5.0.0": "docdb5.0", "8.0.0": "docdb8.0"}

#: Maximum connections per instance, by instance class ("Instance limits" table).
#: Source: docs.aws.amazon.com/documentdb/latest/developerguide/limits.html#limits.instance
#: (values as written there; re-check when adding a class).
DOCDB_MAX_CONNECTIONS: dict[str, int] = {
    "db.t3.medium": 500,
    "db.t4g.medium": 500,
    **{f"db.{family}.large": 1700 for family in ("r5", "r6g", "r8g")},
    **{f"db.{family}.xlarge": 3500 for family in ("r5", "r6g", "r6gd", "r8g")},
    **{f"db.{family}.2xlarge": 7100 for family in ("r5", "r6g", "r6gd", "r8g")},
    **{f"db.{family}.4xlarge": 14200 for family in ("r5", "r6g", "r6gd", "r8g")},
    **{f"db.{family}.8xlarge": 28400 for family in ("r5", "r6g", "r6gd", "r8g")},
    **{f"db.{family}.12xlarge": 30000 for family in ("r5", "r6g", "r6gd", "r8g")},
    **{f"db.{family}.16xlarge": 30000 for family in ("r5", "r6g", "r6gd", "r8g")},
    "db.r5.24xlarge": 30000,
}

# --- IAM ------------------------------------------------------------------------------------

#: All inline policies of one role share this many characters (whitespace not counted).
#: Source: docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html
IAM_ROLE_INLINE_POLICY_MAX_CHARS = 10_240

# --- Amazon Bedrock --------------------------------------------------------------------------

#: Cross-region inference profile geography (the id's first label) -> the region pattern its
#: destination regions fall in, as used in a foundation-model ARN. A pattern instead of a list,
#: because AWS adds destination regions to a geography over time and lists differ per model; the
#: IAM statement also requires the call to come through an inference profile (whose ids are listed
#: one by one), so the pattern only widens *where* an allowed profile may run, never *what* runs.
#: ``global`` may route to any commercial region (and uses the region-less ARN as well).
#: Source: docs.aws.amazon.com/bedrock/latest/userguide/inference-profiles-support.html,
#: .../global-cross-region-inference.html
INFERENCE_PROFILE_REGION_PATTERNS: dict[str, str] = {
    "us": "us-*",
    "eu": "eu-*",
    "apac": "ap-*",
    "jp": "ap-northeast-*",
    "au": "ap-southeast-*",
    "global": "*",
}
