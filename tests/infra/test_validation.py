"""Config validation: bad values fail early with a message naming the key (pure, no Pulumi engine)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from infra.stack_config import StackConfig
from infra.validation import FARGATE_TASK_SIZES, ConfigError, check, validate, validate_task_size, validate_vpc_cidr

CERT = "arn:aws:acm:us-east-1:123456789012:certificate/0f5b5a29-1111-2222-3333-444455556666"
VALID = StackConfig(
    name="claude-code-proxy-test", region="us-east-1", domain_name="proxy.example.com", certificate_arn=CERT
)


def problems_with(**changes: object) -> list[str]:
    return validate(replace(VALID, **changes))


def test_defaults_are_valid() -> None:
    assert validate(VALID) == []
    check(VALID)  # does not raise


@pytest.mark.parametrize("timeout_s", [30, 300, 600])
def test_idle_timeout_at_or_below_claude_codes_600s_is_rejected(timeout_s: int) -> None:
    problems = problems_with(alb_idle_timeout_s=timeout_s)
    assert len(problems) == 1
    assert "albIdleTimeoutS" in problems[0] and "600" in problems[0]


def test_idle_timeout_range_edges() -> None:
    assert problems_with(alb_idle_timeout_s=601) == []
    assert problems_with(alb_idle_timeout_s=4000) == []
    assert any("albIdleTimeoutS" in p for p in problems_with(alb_idle_timeout_s=4001))


def test_unknown_region_is_rejected() -> None:
    problems = problems_with(region="us-nowhere-1")
    assert any("aws:region='us-nowhere-1'" in p for p in problems)


@pytest.mark.parametrize("az_count", [0, 1, 7])
def test_az_count_must_be_2_to_6(az_count: int) -> None:
    problems = problems_with(az_count=az_count, nat_gateways=min(1, az_count), vpc_endpoints=True)
    assert any(p.startswith(f"azCount={az_count}") for p in problems)


@pytest.mark.parametrize(("cpu", "memory"), [(256, 4096), (512, 512), (1024, 1024), (4096, 31744)])
def test_bad_fargate_cpu_memory_pair_names_the_allowed_range(cpu: int, memory: int) -> None:
    problems = validate_task_size(cpu, memory)
    assert len(problems) == 1
    assert f"taskMemory={memory}" in problems[0] and f"taskCpu={cpu}" in problems[0]
    low, high = FARGATE_TASK_SIZES[cpu][0], FARGATE_TASK_SIZES[cpu][-1]
    assert f"{low}..{high}" in problems[0]


def test_unknown_fargate_cpu_is_rejected() -> None:
    assert "taskCpu=300" in validate_task_size(300, 1024)[0]


@pytest.mark.parametrize(
    ("cpu", "memory"), [(256, 512), (512, 4096), (1024, 8192), (2048, 16384), (8192, 61440), (16384, 122880)]
)
def test_valid_fargate_pairs_pass(cpu: int, memory: int) -> None:
    assert validate_task_size(cpu, memory) == []


def test_no_nat_and_no_endpoints_is_rejected() -> None:
    problems = problems_with(nat_gateways=0, vpc_endpoints=False)
    assert any("natGateways=0" in p and "vpcEndpoints" in p for p in problems)
    assert problems_with(nat_gateways=0, vpc_endpoints=True) == []


def test_more_nat_gateways_than_azs_is_rejected() -> None:
    assert any(p.startswith("natGateways=3") for p in problems_with(nat_gateways=3))


@pytest.mark.parametrize(
    ("cidr", "fragment"),
    [
        ("8.8.0.0/16", "private"),
        ("10.0.0.0/24", "/16 and /22"),
        ("10.0.0.0/8", "/16 and /22"),
        ("10.0.0.1/16", "not an IPv4 network"),
        ("banana", "not an IPv4"),
    ],
)
def test_bad_vpc_cidr(cidr: str, fragment: str) -> None:
    problems = validate_vpc_cidr(cidr)
    assert problems and any(fragment in p for p in problems)


def test_certificate_must_be_in_the_alb_region_and_come_with_a_domain() -> None:
    other_region = CERT.replace("us-east-1", "eu-west-1")
    assert any("own region" in p for p in problems_with(certificate_arn=other_region))
    assert any("without domainName" in p for p in problems_with(domain_name=None))
    assert any("not an ACM certificate ARN" in p for p in problems_with(certificate_arn="arn:nope"))


def test_https_is_required_unless_plain_http_is_asked_for_explicitly() -> None:
    bare = replace(VALID, certificate_arn=None, domain_name=None)
    (problem,) = validate(bare)
    assert problem.startswith("HTTPS is required") and "allowInsecureHttp" in problem
    assert validate(replace(bare, allow_insecure_http=True)) == []
    created = replace(bare, domain_name="proxy.example.com", hosted_zone_id="Z0123456789ABC")
    assert validate(created) == [] and created.https and created.creates_certificate
    assert not VALID.creates_certificate and VALID.https


def test_tls_policy_must_be_a_tls13_policy() -> None:
    assert any("sslPolicy" in p for p in problems_with(ssl_policy="ELBSecurityPolicy-2016-08"))
    assert problems_with(ssl_policy="ELBSecurityPolicy-TLS13-1-3-2021-06") == []


def test_hosted_zone_needs_a_domain() -> None:
    assert any("hostedZoneId" in p for p in problems_with(hosted_zone_id="Z0123456789ABC", domain_name=None))


def test_admin_cidrs_must_be_networks_and_few_enough() -> None:
    assert problems_with(admin_allowed_cidrs=("203.0.113.0/24", "2001:db8::/32")) == []
    assert any("'10.0.0.1/8'" in p for p in problems_with(admin_allowed_cidrs=("10.0.0.1/8",)))
    many = tuple(f"10.0.{i}.0/24" for i in range(31))
    assert any("at most 30" in p for p in problems_with(admin_allowed_cidrs=many))


def test_oidc_needs_https_endpoints_and_a_secret_arn_in_the_region() -> None:
    from infra.stack_config import OidcConfig

    oidc = OidcConfig(
        issuer="https://idp.example.com",
        authorization_endpoint="https://idp.example.com/authorize",
        token_endpoint="https://idp.example.com/token",
        user_info_endpoint="https://idp.example.com/userinfo",
        client_id="proxy",
        client_secret_arn="arn:aws:secretsmanager:us-east-1:123456789012:secret:oidc-AbCdEf",
    )
    assert problems_with(admin_oidc=oidc) == []
    assert any("needs HTTPS" in p for p in problems_with(admin_oidc=oidc, certificate_arn=None, allow_insecure_http=True))
    bad = replace(oidc, token_endpoint="http://idp/token", client_secret_arn=oidc.client_secret_arn.replace("us-east-1", "eu-west-1"))
    problems = problems_with(admin_oidc=bad)
    assert any("adminOidc.tokenEndpoint" in p for p in problems)
    assert any("adminOidc.clientSecretArn is in eu-west-1" in p for p in problems)


def test_extra_model_ids_are_checked_and_geographies_known() -> None:
    assert problems_with(bedrock_extra_model_ids=("us.anthropic.claude-3-haiku-20240307-v1:0",)) == []
    assert any("bedrockExtraModelIds" in p for p in problems_with(bedrock_extra_model_ids=("anthropic.*",)))
    assert any("bedrockInferenceProfilePrefix" in p for p in problems_with(bedrock_inference_profile_prefix="mars"))
    assert problems_with(bedrock_inference_profile_prefix="eu", bedrock_region="eu-central-1") == []


def test_documentdb_4_0_is_refused() -> None:
    assert any("4.0 is too old" in p for p in problems_with(docdb_engine_version="4.0.0"))


def test_validate_is_a_table_of_rules() -> None:
    """issue 12: validate() is table-driven; each rule names a config key in its message."""
    import ast
    import inspect

    from infra.validation import RULES

    assert len(RULES) >= 30
    tree = ast.parse(inspect.getsource(validate))
    branches = [n for n in ast.walk(tree) if isinstance(n, (ast.If, ast.IfExp, ast.BoolOp, ast.Try, ast.Match))]
    assert branches == [], "validate() should only run the tables"
    for rule in RULES:  # every message renders for the defaults and names a key-ish token
        assert rule.message(VALID)


@pytest.mark.parametrize(
    ("changes", "key"),
    [
        ({"log_retention_days": 42}, "logRetentionDays=42"),
        ({"desired_count": 9}, "desiredCount=9"),
        ({"max_count": 1}, "maxCount=1"),
        ({"min_count": 0, "desired_count": 0}, "minCount=0"),
        ({"stop_timeout_s": 121}, "stopTimeoutS=121"),
        ({"alarm_email": "not-an-email"}, "alarmEmail"),
        ({"docdb_engine_version": "3.6.0"}, "docdbEngineVersion"),
        ({"docdb_instance_class": "db.m5.large"}, "docdbInstanceClass"),
        ({"docdb_instance_count": 0}, "docdbInstanceCount=0"),
        ({"docdb_backup_retention_days": 36}, "docdbBackupRetentionDays=36"),
        ({"deregistration_delay_s": 4000}, "deregistrationDelayS=4000"),
        ({"log_level": "LOUD"}, "logLevel"),
        ({"image": "not an image"}, "image="),
        ({"domain_name": "Proxy.Example.com"}, "domainName"),
        ({"fallback_rate_alarm_percent": 0}, "fallbackRateAlarmPercent=0"),
    ],
)
def test_each_bad_value_names_its_key(changes: dict[str, object], key: str) -> None:
    problems = problems_with(**changes)
    assert problems, f"{changes} should be rejected"
    assert any(key in p for p in problems), problems


def test_config_error_lists_every_problem() -> None:
    bad = replace(
        VALID, region="nowhere", bedrock_region="us-east-1", alb_idle_timeout_s=60, task_cpu=256, task_memory_mib=8192,
        certificate_arn=None,
    )
    with pytest.raises(ConfigError) as caught:
        check(bad)
    assert len(caught.value.problems) == 4
    message = str(caught.value)
    assert "4 problem(s)" in message and "HTTPS is required" in message
    assert "aws:region" in message and "albIdleTimeoutS" in message and "taskMemory" in message
