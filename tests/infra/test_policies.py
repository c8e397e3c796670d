"""IAM and KMS policy documents (pure)."""

from __future__ import annotations

import json

from app.crypto.envelope import bedrock_key_context
from infra.bedrock_access import bedrock_statements
from infra.policies import (
    APP_KEY_CONTEXT_KEYS,
    APP_KEY_CONTEXT_PURPOSE,
    actions_of,
    data_key_policy,
    ecr_repository_arn,
    ecs_tasks_trust_policy,
    envelope_encryption_statement,
    execution_role_policy,
    resources_of,
    task_role_policy,
)
from tests.support.constants import BEDROCK_FOUNDATION_MODEL_ID as MODEL



def test_task_role_policy_is_bedrock_and_app_key_only() -> None:
    bedrock = bedrock_statements("aws", "123456789012", "us-east-1", [f"us.{MODEL}"])
    doc = task_role_policy(bedrock, "arn:aws:kms:us-east-1:123456789012:key/app")
    assert actions_of(doc) == {
        "bedrock:InvokeModel",
        "bedrock:InvokeModelWithResponseStream",
        "bedrock:CountTokens",
        "kms:GenerateDataKey",
        "kms:Decrypt",
    }
    assert resources_of(doc, ["kms:Decrypt"]) == {"arn:aws:kms:us-east-1:123456789012:key/app"}
    assert doc["Statement"][: len(bedrock)] == bedrock
    assert all(s["Effect"] == "Allow" for s in doc["Statement"])


def test_execution_role_reads_exactly_the_given_secrets() -> None:
    doc = execution_role_policy(
        secret_arns=["arn:s:2", "arn:s:1"],
        data_key_arn="arn:k:data",
        log_group_arn="arn:aws:logs:us-east-1:1:log-group:/ecs/x",
        region="us-east-1",
        ecr_repository_arn="arn:aws:ecr:us-east-1:1:repository/r",
    )
    assert resources_of(doc, ["secretsmanager:GetSecretValue"]) == {"arn:s:1", "arn:s:2"}
    decrypt = next(s for s in doc["Statement"] if s["Action"] == ["kms:Decrypt"])
    assert decrypt["Resource"] == ["arn:k:data"]
    assert decrypt["Condition"] == {"StringEquals": {"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com"}}
    assert resources_of(doc, ["ecr:BatchGetImage"]) == {"arn:aws:ecr:us-east-1:1:repository/r"}
    assert resources_of(doc, ["logs:PutLogEvents"]) == {"arn:aws:logs:us-east-1:1:log-group:/ecs/x:*"}
    wildcard = [s for s in doc["Statement"] if s["Resource"] == "*"]
    assert [s["Action"] for s in wildcard] == [["ecr:GetAuthorizationToken"]]


def test_execution_role_without_ecr_has_no_wildcard() -> None:
    doc = execution_role_policy(["arn:s:1"], "arn:k", "arn:l", "us-east-1", None)
    assert not any(a.startswith("ecr:") for a in actions_of(doc))
    assert all(s["Resource"] != "*" for s in doc["Statement"])


def test_trust_policy_is_ecs_tasks_in_this_account() -> None:
    doc = ecs_tasks_trust_policy("aws", "123456789012", "us-east-1")
    (statement,) = doc["Statement"]
    assert statement["Principal"] == {"Service": "ecs-tasks.amazonaws.com"}
    assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": "123456789012"}


def test_data_key_lets_logs_of_this_account_and_alarms_use_it() -> None:
    doc = data_key_policy("aws", "123456789012", "eu-west-1")
    principals = [s["Principal"] for s in doc["Statement"]]
    assert {"Service": "logs.eu-west-1.amazonaws.com"} in principals
    assert {"Service": "cloudwatch.amazonaws.com"} in principals
    logs = next(s for s in doc["Statement"] if s["Principal"] == {"Service": "logs.eu-west-1.amazonaws.com"})
    assert (
        logs["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"]
        == "arn:aws:logs:eu-west-1:123456789012:log-group:*"
    )


def test_ecr_repository_arn_from_image_uri() -> None:
    assert (
        ecr_repository_arn("123456789012.dkr.ecr.us-east-1.amazonaws.com/team/proxy:1.2", "aws")
        == "arn:aws:ecr:us-east-1:123456789012:repository/team/proxy"
    )
    digest = "sha256:" + "a" * 64
    assert ecr_repository_arn(f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/proxy@{digest}", "aws") == (
        "arn:aws:ecr:eu-west-1:123456789012:repository/proxy"
    )
    assert ecr_repository_arn("ghcr.io/example/proxy:1.0", "aws") is None


def test_app_key_use_requires_the_apps_own_encryption_context() -> None:
    statement = envelope_encryption_statement("arn:aws:kms:us-east-1:123456789012:key/app")
    assert statement["Action"] == ["kms:Decrypt", "kms:GenerateDataKey"]  # never kms:Encrypt
    context = bedrock_key_context("ak_123")  # what app/crypto/envelope.py sends to KMS
    condition = statement["Condition"]
    assert condition["StringEquals"] == {"kms:EncryptionContext:purpose": context["purpose"]}
    assert set(condition["ForAllValues:StringEquals"]["kms:EncryptionContextKeys"]) == set(context)
    assert condition["Null"] == {"kms:EncryptionContext:access_key_id": "false"}
    assert (APP_KEY_CONTEXT_PURPOSE, set(APP_KEY_CONTEXT_KEYS)) == (context["purpose"], set(context))


def test_the_deployed_task_role_carries_the_context_condition(http_stack) -> None:
    doc = json.loads(http_stack.named("roles-task", "aws:iam/rolePolicy:RolePolicy").inputs["policy"])
    (kms,) = [s for s in doc["Statement"] if any(a.startswith("kms:") for a in s["Action"])]
    assert "kms:Encrypt" not in kms["Action"]
    assert kms["Condition"]["StringEquals"] == {"kms:EncryptionContext:purpose": "bedrock-api-key"}
