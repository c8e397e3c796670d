"""Task and execution role policies over a mocked run."""

from __future__ import annotations

import json

from infra.aws_facts import IAM_ROLE_INLINE_POLICY_MAX_CHARS
from infra.iam import secret_arn_of
from infra.policies import actions_of, resources_of
from tests.infra.harness import BASE_CONFIG, ProgramRun
from tests.support.constants import BEDROCK_FOUNDATION_MODEL_ID as MODEL

BEDROCK = {"bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream", "bedrock:CountTokens"}
KMS = {"kms:GenerateDataKey", "kms:Decrypt"}  # no kms:Encrypt: envelope.py never calls it


def policy(stack: ProgramRun, name: str) -> dict:
    return json.loads(stack.named(name, "aws:iam/rolePolicy:RolePolicy").inputs["policy"])


def test_task_role_actions_are_exactly_bedrock_and_kms(http_stack: ProgramRun) -> None:
    doc = policy(http_stack, "roles-task")
    assert actions_of(doc) == BEDROCK | KMS


def test_bedrock_is_scoped_to_model_and_profile_arns(http_stack: ProgramRun) -> None:
    doc = policy(http_stack, "roles-task")
    resources = resources_of(doc, BEDROCK)
    assert "*" not in resources
    assert all(r.startswith("arn:aws:bedrock:") for r in resources)
    assert all(":foundation-model/anthropic." in r or ":inference-profile/us.anthropic." in r for r in resources)
    assert f"arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.{MODEL}" in resources
    assert f"arn:aws:bedrock:us-*::foundation-model/{MODEL}" in resources
    assert not any(":eu-" in r or "bedrock:*:" in r for r in resources)
    through = next(s for s in doc["Statement"] if s["Sid"] == "InvokeModelsThroughProfiles")
    assert through["Condition"] == {
        "StringLike": {"bedrock:InferenceProfileArn": "arn:aws:bedrock:us-east-1:123456789012:inference-profile/*"}
    }


def test_kms_only_on_the_app_key(http_stack: ProgramRun) -> None:
    doc = policy(http_stack, "roles-task")
    app_key = http_stack.named("keys-app", "aws:kms/key:Key")
    assert resources_of(doc, KMS) == {f"arn:aws:kms:us-east-1:123456789012:key/{app_key.name}-key-id"}
    assert "*" not in {
        r for s in doc["Statement"] for r in ([s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"])
    }


def test_profile_geography_and_extra_ids_shape_the_policy(run) -> None:
    stack = run(
        {
            **BASE_CONFIG,
            "bedrockInferenceProfilePrefix": "global",
            "bedrockExtraModelIds": ["anthropic.claude-3-haiku-20240307-v1:0"],
        }
    )
    doc = policy(stack, "roles-task")
    resources = resources_of(doc, BEDROCK)
    assert f"arn:aws:bedrock:us-east-1:123456789012:inference-profile/global.{MODEL}" in resources
    assert f"arn:aws:bedrock:*::foundation-model/{MODEL}" in resources
    assert f"arn:aws:bedrock:::foundation-model/{MODEL}" in resources
    # models without a global profile fall back to "us" in the app, so the role follows
    assert "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-opus-4-1-20250805-v1:0" in resources
    direct = next(s for s in doc["Statement"] if s["Sid"] == "InvokeFoundationModels")
    assert direct["Resource"] == ["arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0"]


def test_task_role_policy_fits_the_inline_policy_size_limit(http_stack: ProgramRun, run) -> None:
    """IAM counts inline role policies without whitespace against 10,240 characters per role."""
    extra = {"bedrockExtraModelIds": [f"us.anthropic.claude-extra-{i}-v1:0" for i in range(10)]}
    for stack in (http_stack, run({**BASE_CONFIG, "bedrockInferenceProfilePrefix": "global", **extra})):
        text = json.dumps(policy(stack, "roles-task"), separators=(",", ":"))
        assert len(text) < IAM_ROLE_INLINE_POLICY_MAX_CHARS, len(text)


def test_execution_role_reads_only_the_injected_secrets(https_stack: ProgramRun) -> None:
    doc = policy(https_stack, "roles-execution")
    injected = {
        secret_arn_of(s["valueFrom"]) for c in https_stack.containers().values() for s in c["secrets"]
    }
    # secret key, admin password, metrics token, app user, master user (db-init), and the metrics
    # agent's scrape config (it holds the token)
    assert len(injected) == 6
    assert resources_of(doc, ["secretsmanager:GetSecretValue"]) == injected
    data_key = https_stack.named("keys-data", "aws:kms/key:Key")
    assert resources_of(doc, ["kms:Decrypt"]) == {f"arn:aws:kms:us-east-1:123456789012:key/{data_key.name}-key-id"}
    assert not any(a.startswith("bedrock:") for a in actions_of(doc))


def test_execution_role_pulls_only_from_the_images_repository(http_stack: ProgramRun, https_stack: ProgramRun) -> None:
    built = policy(http_stack, "roles-execution")
    assert resources_of(built, ["ecr:BatchGetImage"]) == {"arn:aws:ecr:us-east-1:123456789012:repository/image-repo"}
    configured = policy(https_stack, "roles-execution")
    assert resources_of(configured, ["ecr:BatchGetImage"]) == {
        "arn:aws:ecr:us-east-1:123456789012:repository/claude-code-proxy"
    }


def test_roles_trust_only_ecs_tasks(http_stack: ProgramRun) -> None:
    for role in http_stack.of_type("aws:iam/role:Role"):
        (statement,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
        assert statement["Principal"] == {"Service": "ecs-tasks.amazonaws.com"}
    assert not http_stack.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")


def test_task_definition_uses_the_two_roles(http_stack: ProgramRun) -> None:
    task = http_stack.one("aws:ecs/taskDefinition:TaskDefinition").inputs
    assert task["taskRoleArn"] == "arn:aws:iam:us-east-1:123456789012:role/roles-task"
    assert task["executionRoleArn"] == "arn:aws:iam:us-east-1:123456789012:role/roles-execution"
