"""Config validation: bad values fail early with a message naming the key (pure, no Pulumi engine)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from infra.stack_config import StackConfig
from infra.validation import FARGATE_TASK_SIZES, ConfigError, check, validate, validate_task_size, validate_vpc_cidr

VALID = StackConfig(name="claude-code-proxy-test", region="us-east-1")
CERT = "arn:aws:acm:us-east-1:123456789012:certificate/0f5b5a29-1111-2222-3333-444455556666"


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
    assert any("own region" in p for p in problems_with(certificate_arn=other_region, domain_name="proxy.example.com"))
    assert any("without domainName" in p for p in problems_with(certificate_arn=CERT))
    assert any(
        "not an ACM certificate ARN" in p
        for p in problems_with(certificate_arn="arn:nope", domain_name="proxy.example.com")
    )
    assert problems_with(certificate_arn=CERT, domain_name="proxy.example.com") == []


def test_hosted_zone_needs_a_domain() -> None:
    assert any("hostedZoneId" in p for p in problems_with(hosted_zone_id="Z0123456789ABC"))


def test_inference_profile_must_route_to_an_allowed_model() -> None:
    problems = problems_with(bedrock_inference_profile_ids=("us.anthropic.claude-3-haiku-20240307-v1:0",))
    assert any("not in bedrockModelIds" in p for p in problems)
    problems = problems_with(bedrock_inference_profile_ids=("eu.anthropic.claude-sonnet-4-5-20250929-v1:0",))
    assert any("does not start with the prefix 'us'" in p for p in problems)


def test_eu_and_apac_profiles_need_explicit_regions() -> None:
    problems = problems_with(bedrock_inference_profile_prefix="eu", bedrock_region="eu-central-1")
    assert any("bedrockRegions must be set" in p for p in problems)
    assert (
        problems_with(
            bedrock_inference_profile_prefix="eu",
            bedrock_region="eu-central-1",
            bedrock_regions=("eu-central-1", "eu-west-1"),
        )
        == []
    )


def test_bedrock_region_must_be_a_destination_of_its_profiles() -> None:
    problems = problems_with(bedrock_region="eu-west-1")
    assert any("bedrockRegion eu-west-1 is not in bedrockRegions" in p for p in problems)


def test_unknown_profile_prefix_and_wildcard_models_are_rejected() -> None:
    assert any("bedrockInferenceProfilePrefix" in p for p in problems_with(bedrock_inference_profile_prefix="mars"))
    assert any("bedrockModelIds" in p for p in problems_with(bedrock_model_ids=("anthropic.*",)))
    assert any("bedrockModelIds is empty" in p for p in problems_with(bedrock_model_ids=()))


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
        VALID, region="nowhere", bedrock_region="us-east-1", alb_idle_timeout_s=60, task_cpu=256, task_memory_mib=8192
    )
    with pytest.raises(ConfigError) as caught:
        check(bad)
    assert len(caught.value.problems) == 3
    message = str(caught.value)
    assert "3 problem(s)" in message
    assert "aws:region" in message and "albIdleTimeoutS" in message and "taskMemory" in message
