"""The whole program under mocks: outputs, secrets, structure, the shipped dev config, bad config."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.validation import ConfigError
from tests.infra.harness import BASE_CONFIG, PROJECT, ProgramRun, run_program, strings_in

ROOT = Path(__file__).resolve().parents[2]
REQUIRED_OUTPUTS = {"proxyBaseUrl", "dashboardUrl", "claudeCodeEnv", "logGroupName"}


def test_outputs_point_claude_code_at_the_proxy(https_stack: ProgramRun) -> None:
    outputs = https_stack.outputs
    assert set(outputs) >= REQUIRED_OUTPUTS
    assert outputs["proxyBaseUrl"] == "https://proxy.example.com"
    assert outputs["dashboardUrl"] == "https://proxy.example.com/ui"
    assert "export ANTHROPIC_BASE_URL=https://proxy.example.com\n" in outputs["claudeCodeEnv"]
    assert 'ANTHROPIC_CUSTOM_HEADERS="x-proxy-key: <your key>"' in outputs["claudeCodeEnv"]
    assert outputs["logGroupName"] == https_stack.task_container()["logConfiguration"]["options"]["awslogs-group"]
    assert outputs["warnings"] == [] and https_stack.warnings == []


def test_no_output_is_or_contains_a_secret(http_stack: ProgramRun, https_stack: ProgramRun) -> None:
    for stack in (http_stack, https_stack):
        assert stack.secret_outputs == set()
        leaked = set(strings_in(stack.outputs))
        for secret in stack.secret_values():
            assert not any(secret in value for value in leaked), f"{secret} leaked into an output"
        assert len(stack.generated_secrets) >= 2  # the mocks did generate secrets to look for


def test_deletion_protection_follows_config_everywhere(http_stack: ProgramRun, run) -> None:
    loose = run({**BASE_CONFIG, "deletionProtection": False})
    for stack, protected in ((http_stack, True), (loose, False)):
        assert stack.one("aws:docdb/cluster:Cluster").inputs["deletionProtection"] is protected
        assert stack.one("aws:lb/loadBalancer:LoadBalancer").inputs["enableDeletionProtection"] is protected
        assert stack.one("aws:ecr/repository:Repository").inputs["forceDelete"] is (not protected)
    assert any("deletionProtection=false" in w for w in loose.outputs["warnings"])


def test_every_resource_sits_in_a_claude_proxy_component(http_stack: ProgramRun) -> None:
    for resource in http_stack.resources:
        if resource.typ.startswith("claude-proxy:"):
            assert resource.parent_type == "pulumi:pulumi:Stack", resource.name
        else:
            assert resource.parent_type.startswith("claude-proxy:"), (
                f"{resource.typ} {resource.name} has no component parent"
            )
    tokens = {r.typ for r in http_stack.resources if r.typ.startswith("claude-proxy:")}
    assert len(tokens) == 13  # the WAF and flow logs are off by default
    assert all(len(t.split(":")) == 3 for t in tokens)


def dev_config() -> dict[str, Any]:
    document = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())
    config: dict[str, Any] = {}
    for key, value in document["config"].items():
        bare = key.removeprefix(f"{PROJECT}:")
        config[bare] = value if isinstance(value, str) else json.dumps(value)
    return config


def stack_file_config(stack: str) -> dict[str, Any]:
    document = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())
    config: dict[str, Any] = {}
    for key, value in document["config"].items():
        bare = key.removeprefix(f"{PROJECT}:")
        config[bare] = value if isinstance(value, str) else json.dumps(value)
    return config


def test_the_shipped_dev_stack_config_builds(run) -> None:
    config = dev_config()
    assert config["aws:region"] == "us-east-1"
    stack = run(config)
    assert stack.one("aws:docdb/cluster:Cluster").inputs["engineVersion"] == "5.0.0"
    task = stack.one("aws:ecs/taskDefinition:TaskDefinition").inputs
    assert (task["cpu"], task["memory"]) == ("512", "1024")
    assert stack.one("aws:lb/loadBalancer:LoadBalancer").inputs["idleTimeout"] == 900
    assert stack.outputs["proxyBaseUrl"].startswith("https://")  # HTTPS by default, certificate created
    assert len(stack.of_type("aws:ec2/natGateway:NatGateway")) == 1


def test_the_shipped_prod_stack_config_builds(run) -> None:
    stack = run(stack_file_config("prod"))
    assert len(stack.of_type("aws:ec2/subnet:Subnet")) == 6  # 3 AZs, public + private
    assert len(stack.of_type("aws:ec2/natGateway:NatGateway")) == 3  # one per AZ
    assert len(stack.of_type("aws:docdb/clusterInstance:ClusterInstance")) == 2
    assert {r.inputs["serviceName"] for r in stack.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")} >= {
        "com.amazonaws.us-east-1.bedrock-runtime"
    }
    https = next(r for r in stack.of_type("aws:lb/listener:Listener") if r.inputs["port"] == 443)
    assert https.inputs["certificateArn"].startswith("arn:aws:acm:us-east-1:")
    assert stack.of_type("docker-build:index:Image") == []  # prebuilt image by digest
    assert stack.outputs["warnings"] == []
    assert all(r.protect for r in stack.of_type("aws:kms/key:Key"))


#: Inputs that become names unique per account and region (what AWS rejects twice).
PHYSICAL_NAME_KEYS = (
    "name", "namePrefix", "clusterIdentifier", "identifier", "family", "alarmName", "dashboardName", "bucket",
    "bucketPrefix", "finalSnapshotIdentifier", "topicName",
)
#: Types whose "name" is not account-unique (a route's or a record's name, a parameter's ...).
NOT_ACCOUNT_UNIQUE = {"aws:route53/record:Record", "aws:acm/certificate:Certificate"}


def physical_names(stack: ProgramRun) -> set[tuple[str, str]]:
    names = set()
    for resource in stack.resources:
        if resource.typ.startswith(("claude-proxy:", "pulumi:")) or resource.typ in NOT_ACCOUNT_UNIQUE:
            continue
        for key in PHYSICAL_NAME_KEYS:
            value = resource.inputs.get(key)
            if key == "family" and resource.typ != "aws:ecs/taskDefinition:TaskDefinition":
                continue  # a parameter group's family is a kind, not a name
            if isinstance(value, str) and value and not value.endswith("-id"):  # "-id": a reference (mock id)
                names.add((resource.typ, value))
    return names


def test_two_stacks_in_one_account_share_no_physical_name() -> None:
    # every optional named resource on: WAF web ACL, flow-log group, access-log bucket
    config = {**dev_config(), "deletionProtection": "false", "waf": "true", "vpcFlowLogs": "true"}
    dev, prod = run_program(config, stack="dev"), run_program(config, stack="prod")
    dev_names, prod_names = physical_names(dev), physical_names(prod)
    assert ("aws:kms/alias:Alias", "alias/claude-code-proxy-dev-app") in dev_names
    assert ("aws:kms/alias:Alias", "alias/claude-code-proxy-prod-data") in prod_names
    assert len(dev_names) >= 10  # the check really looked at names
    assert dev_names & prod_names == set()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"albIdleTimeoutS": 300}, "albIdleTimeoutS=300"),
        ({"azCount": 1}, "azCount=1"),
        ({"taskCpu": 256, "taskMemory": 4096}, "taskMemory=4096"),
        ({"aws:region": "moon-1"}, "moon-1"),
        ({"azCount": "two"}, "azCount='two' is not an integer"),
        ({"deletionProtection": "maybe"}, "deletionProtection='maybe' is not a boolean"),
        ({"adminAllowedCidrs": "10.0.0.0/8"}, "adminAllowedCidrs must be a list"),
        ({"bedrockModelIds": ["anthropic.claude"]}, "bedrockModelIds is no longer read"),
        ({"natGateways": "many"}, "natGateways='many': use single, perAz or none"),
        ({"adminOidc": {"issuer": "https://x"}}, "adminOidc must be an object"),
    ],
)
def test_bad_config_stops_the_program_with_a_readable_message(override: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        run_program({**BASE_CONFIG, **override})
    assert message in str(caught.value)


def test_missing_region_is_reported() -> None:
    with pytest.raises(ConfigError, match="aws:region is not set"):
        run_program({})
