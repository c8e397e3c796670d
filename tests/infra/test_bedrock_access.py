"""The task role allows every model the app can route to (pure: app/bedrock/models.py -> IAM)."""

from __future__ import annotations

import fnmatch
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from app.bedrock.models import MODELS, resolve_model
from infra.aws_facts import INFERENCE_PROFILE_REGION_PATTERNS
from infra.bedrock_access import bedrock_statements, parse_model_id, routable_model_ids

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"
SOURCE = {"us": "us-east-1", "eu": "eu-central-1", "apac": "ap-northeast-1", "jp": "ap-northeast-1",
          "au": "ap-southeast-2", "global": "us-east-1"}
#: A destination region of each geography, other than the source (where cross-region inference runs).
DESTINATION = {"us": "us-west-2", "eu": "eu-west-3", "apac": "ap-south-1", "jp": "ap-northeast-3",
               "au": "ap-southeast-4", "global": "sa-east-1"}
INVOKE = ("bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream")


def allowed(statements: list[dict[str, Any]], action: str, resource: str, context: dict[str, str]) -> bool:
    """A tiny IAM evaluator for Allow statements: action and resource match (``*`` wildcards, ARN
    wildcards as IAM reads them), every condition holds (StringEquals / StringLike on ``context``)."""
    for statement in statements:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        if action not in actions or not any(fnmatch.fnmatchcase(resource, r) for r in resources):
            continue
        conditions = statement.get("Condition", {})
        ok = True
        for operator, tests in conditions.items():
            for key, wanted in tests.items():
                values = wanted if isinstance(wanted, list) else [wanted]
                have = context.get(key)
                if have is None:
                    ok = False
                elif operator == "StringEquals":
                    ok = ok and have in values
                elif operator == "StringLike":
                    ok = ok and any(fnmatch.fnmatchcase(have, v) for v in values)
                else:
                    raise AssertionError(f"unsupported operator {operator}")
        if ok:
            return True
    return False


def can_invoke(statements: list[dict[str, Any]], model_id: str, source: str) -> bool:
    """Would a Converse call with ``model_id`` from ``source`` pass IAM in the source region and in
    a destination region of its profile (where Bedrock checks the foundation model)?"""
    target = parse_model_id(model_id)
    if not target.is_profile:
        arn = f"arn:aws:bedrock:{source}::foundation-model/{model_id}"
        return all(allowed(statements, a, arn, {}) for a in INVOKE)
    profile = f"arn:aws:bedrock:{source}:{ACCOUNT}:inference-profile/{model_id}"
    context = {"bedrock:InferenceProfileArn": profile}
    destination = DESTINATION[target.geography or ""]
    models = [f"arn:aws:bedrock:{region}::foundation-model/{target.foundation_id}" for region in (source, destination)]
    if target.geography == "global":
        models.append(f"arn:aws:bedrock:::foundation-model/{target.foundation_id}")
    return all(
        allowed(statements, a, profile, {}) and all(allowed(statements, a, m, context) for m in models)
        for a in INVOKE
    )


@pytest.mark.parametrize("prefix", list(INFERENCE_PROFILE_REGION_PATTERNS))
def test_every_model_the_app_can_route_to_is_allowed(prefix: str) -> None:
    source = SOURCE[prefix]
    statements = bedrock_statements("aws", ACCOUNT, source, routable_model_ids(prefix))
    asked = [*MODELS, "claude-sonnet-4-5-20250929", "claude-opus-4-1-20250805", "claude-sonnet-4-5[1m]",
             "claude-opus-4-0", "anthropic/claude-haiku-4-5"]
    for name in asked:
        model_id = resolve_model(name, overrides={}, profile_prefix=prefix).model_id
        assert can_invoke(statements, model_id, source), f"{name} -> {model_id} denied for prefix {prefix}"


def test_claude_codes_default_models_are_in_the_table() -> None:
    statements = bedrock_statements("aws", ACCOUNT, "us-east-1", routable_model_ids("us"))
    for name in ("claude-opus-4-5", "claude-opus-4-1", "claude-sonnet-4", "claude-opus-4-6", "claude-haiku-4-5"):
        model_id = resolve_model(name, overrides={}, profile_prefix="us").model_id
        assert can_invoke(statements, model_id, "us-east-1"), name


def test_nothing_else_is_allowed() -> None:
    statements = bedrock_statements("aws", ACCOUNT, "us-east-1", routable_model_ids("us"))
    assert not can_invoke(statements, "us.anthropic.claude-3-haiku-20240307-v1:0", "us-east-1")  # not in the table
    assert not can_invoke(statements, "us.meta.llama3-70b-instruct-v1:0", "us-east-1")
    model = "anthropic.claude-sonnet-4-5-20250929-v1:0"
    # the foundation model itself, called directly (no profile), is not allowed
    assert not allowed(statements, "bedrock:InvokeModel", f"arn:aws:bedrock:us-west-2::foundation-model/{model}", {})
    # a foundation model outside the geography is not allowed even through a profile
    context = {"bedrock:InferenceProfileArn": f"arn:aws:bedrock:us-east-1:{ACCOUNT}:inference-profile/us.{model}"}
    assert not allowed(statements, "bedrock:InvokeModel", f"arn:aws:bedrock:eu-west-1::foundation-model/{model}",
                       context)
    # a profile of another account does not unlock the foundation models
    foreign = {"bedrock:InferenceProfileArn": f"arn:aws:bedrock:us-east-1:999999999999:inference-profile/us.{model}"}
    assert not allowed(statements, "bedrock:InvokeModel", f"arn:aws:bedrock:us-west-2::foundation-model/{model}",
                       foreign)


def test_extra_ids_from_admin_overrides_are_allowed() -> None:
    extra = ["us.anthropic.claude-3-haiku-20240307-v1:0", "anthropic.claude-3-opus-20240229-v1:0"]
    statements = bedrock_statements("aws", ACCOUNT, "us-east-1", routable_model_ids("us", extra))
    for model_id in (*extra, "us.anthropic.claude-3-opus-20240229-v1:0"):
        assert can_invoke(statements, model_id, "us-east-1"), model_id
        # and an admin model-map override naming it resolves to exactly that id
        assert resolve_model("claude-x", overrides={"claude-x": model_id}, profile_prefix="us").model_id == model_id


def test_parse_model_id() -> None:
    assert parse_model_id("eu.anthropic.claude-x").geography == "eu"
    assert parse_model_id("eu.anthropic.claude-x").foundation_id == "anthropic.claude-x"
    assert parse_model_id("anthropic.claude-x").geography is None


def test_importing_the_model_table_pulls_no_app_dependency_into_the_program() -> None:
    """The Pulumi program's virtualenv has only infra/requirements.txt; the app's model table must
    import with the standard library alone."""
    heavy = ["pydantic", "fastapi", "starlette", "motor", "pymongo", "httpx", "boto3", "botocore", "aioboto3",
             "jinja2", "anthropic", "mongomock", "pulumi"]
    code = (
        "import sys; import infra.bedrock_access; "
        f"print(','.join(m for m in {heavy!r} if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""
