"""IAM and KMS policy documents as plain dicts (pure; no Pulumi).

Components resolve their ARNs, call these functions inside ``Output.apply`` and ``json.dumps`` the
result, so the exact statements are unit-tested here and visible in ``pulumi preview --diff``.

Sources (the Bedrock statements and theirs live in ``bedrock_access.py``):
- ECS task execution role and Secrets Manager:
  docs.aws.amazon.com/AmazonECS/latest/developerguide/secrets-envvar-secrets-manager.html
- CloudWatch Logs with a CMK: docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

PolicyDocument = dict[str, Any]

#: Envelope encryption of Bedrock API keys with the app key: GenerateDataKey to seal, Decrypt to open
#: (app/crypto/envelope.py never calls Encrypt). Only with the app's encryption context.
APP_KEY_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey")
#: The ``purpose`` entry of the encryption context app/crypto/envelope.py sends
#: (``bedrock_key_context``: ``{"purpose": "bedrock-api-key", "access_key_id": <id>}``).
APP_KEY_CONTEXT_PURPOSE = "bedrock-api-key"
APP_KEY_CONTEXT_KEYS = ("access_key_id", "purpose")


def envelope_encryption_statement(app_key_arn: str) -> PolicyDocument:
    """Decrypt/GenerateDataKey on the app key, only for requests whose encryption context is exactly
    the app's: ``purpose`` = ``bedrock-api-key`` and an ``access_key_id``, no other keys.
    Source: docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html#conditions-kms-encryption-context"""
    return {
        "Sid": "EnvelopeEncryption",
        "Effect": "Allow",
        "Action": list(APP_KEY_ACTIONS),
        "Resource": [app_key_arn],
        "Condition": {
            "StringEquals": {"kms:EncryptionContext:purpose": APP_KEY_CONTEXT_PURPOSE},
            "Null": {"kms:EncryptionContext:access_key_id": "false"},
            "ForAllValues:StringEquals": {"kms:EncryptionContextKeys": list(APP_KEY_CONTEXT_KEYS)},
        },
    }


_ECR_IMAGE = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(\.cn)?/(?P<repo>[a-z0-9._/-]+?)(:[\w.-]+)?(@sha256:[a-f0-9]{64})?$"
)


def _document(*statements: PolicyDocument) -> PolicyDocument:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def task_role_policy(bedrock_statements: Sequence[PolicyDocument], app_key_arn: str) -> PolicyDocument:
    """What the running proxy may do: the Bedrock statements (``infra.bedrock_access``: invoke,
    stream and count tokens on the models the app routes to) and envelope encryption with the app
    key, scoped to the app's encryption context. Nothing else (no Secrets Manager, no storage key)."""
    return _document(
        *bedrock_statements,
        envelope_encryption_statement(app_key_arn),
    )


def execution_role_policy(
    secret_arns: Sequence[str],
    data_key_arn: str,
    log_group_arn: str,
    region: str,
    ecr_repository_arn: str | None,
) -> PolicyDocument:
    """What ECS needs to start the task: read exactly these secrets (and decrypt them with the data
    key, only via Secrets Manager), write to the one log group, and pull from the one ECR repository
    (``ecr:GetAuthorizationToken`` has no resource-level permissions, hence ``*`` for it alone)."""
    statements: list[PolicyDocument] = [
        {
            "Sid": "ReadTaskSecrets",
            "Effect": "Allow",
            "Action": ["secretsmanager:GetSecretValue"],
            "Resource": sorted(secret_arns),
        },
        {
            "Sid": "DecryptTaskSecrets",
            "Effect": "Allow",
            "Action": ["kms:Decrypt"],
            "Resource": [data_key_arn],
            "Condition": {"StringEquals": {"kms:ViaService": f"secretsmanager.{region}.amazonaws.com"}},
        },
        {
            "Sid": "WriteLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": [f"{log_group_arn}:*"],
        },
    ]
    if ecr_repository_arn is not None:
        statements += [
            {"Sid": "EcrLogin", "Effect": "Allow", "Action": ["ecr:GetAuthorizationToken"], "Resource": "*"},
            {
                "Sid": "PullImage",
                "Effect": "Allow",
                "Action": ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                "Resource": [ecr_repository_arn],
            },
        ]
    return _document(*statements)


def ecs_tasks_trust_policy(partition: str, account_id: str, region: str) -> PolicyDocument:
    """Trust policy for ECS task and execution roles, limited to this account's ECS in this region
    (confused-deputy guard: aws:SourceAccount and aws:SourceArn)."""
    return _document(
        {
            "Effect": "Allow",
            "Principal": {"Service": "ecs-tasks.amazonaws.com"},
            "Action": "sts:AssumeRole",
            "Condition": {
                "StringEquals": {"aws:SourceAccount": account_id},
                "ArnLike": {"aws:SourceArn": f"arn:{partition}:ecs:{region}:{account_id}:*"},
            },
        }
    )


def account_root_statement(partition: str, account_id: str) -> PolicyDocument:
    """The default key-policy statement that lets IAM policies in the account grant use of the key."""
    return {
        "Sid": "EnableIamPolicies",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:{partition}:iam::{account_id}:root"},
        "Action": "kms:*",
        "Resource": "*",
    }


def app_key_policy(partition: str, account_id: str) -> PolicyDocument:
    """Key policy of the app (envelope) key: IAM decides; only the task role is granted use."""
    return _document(account_root_statement(partition, account_id))


def data_key_policy(partition: str, account_id: str, region: str) -> PolicyDocument:
    """Key policy of the storage key (DocumentDB, Secrets Manager, log groups, SNS): IAM decides, plus
    CloudWatch Logs for this account's log groups and CloudWatch alarms publishing to the SNS topic.
    Source: docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html (encrypted topics)."""
    return _document(
        account_root_statement(partition, account_id),
        {
            "Sid": "CloudWatchLogs",
            "Effect": "Allow",
            "Principal": {"Service": f"logs.{region}.amazonaws.com"},
            "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
            "Resource": "*",
            "Condition": {
                "ArnLike": {
                    "kms:EncryptionContext:aws:logs:arn": f"arn:{partition}:logs:{region}:{account_id}:log-group:*"
                }
            },
        },
        {
            "Sid": "CloudWatchAlarmsToSns",
            "Effect": "Allow",
            "Principal": {"Service": "cloudwatch.amazonaws.com"},
            "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
            "Resource": "*",
            # As AWS documents it for alarms to an encrypted topic: no condition, the grant only
            # lets CloudWatch encrypt messages it publishes to topics that use this key.
        },
    )


def ecr_repository_arn(image: str, partition: str) -> str | None:
    """ARN of the ECR repository an image URI points at, or None for a non-ECR image (public registry).

    ``123456789012.dkr.ecr.us-east-1.amazonaws.com/team/proxy:1.2`` ->
    ``arn:aws:ecr:us-east-1:123456789012:repository/team/proxy``.
    """
    match = _ECR_IMAGE.match(image)
    if match is None:
        return None
    return f"arn:{partition}:ecr:{match['region']}:{match['account']}:repository/{match['repo']}"


def actions_of(document: PolicyDocument) -> set[str]:
    """Every action any statement of ``document`` allows (for tests and reviews)."""
    actions: set[str] = set()
    for statement in document["Statement"]:
        value = statement["Action"]
        actions |= {value} if isinstance(value, str) else set(value)
    return actions


def resources_of(document: PolicyDocument, actions: Iterable[str]) -> set[str]:
    """Every resource granted to any of ``actions`` in ``document``."""
    wanted = set(actions)
    resources: set[str] = set()
    for statement in document["Statement"]:
        stmt_actions = statement["Action"]
        stmt_actions = {stmt_actions} if isinstance(stmt_actions, str) else set(stmt_actions)
        if stmt_actions & wanted:
            value = statement["Resource"]
            resources |= {value} if isinstance(value, str) else set(value)
    return resources
