"""StackConfig's derived values and the stable resource prefix (pure)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from infra.stack_config import StackConfig, resource_prefix

VALID = StackConfig(name="claude-code-proxy-test", region="us-east-1")
CERT = "arn:aws:acm:us-east-1:123456789012:certificate/0f5b5a29-1111-2222-3333-444455556666"


def test_derived_values() -> None:
    assert VALID.docdb_parameter_family == "docdb5.0"
    assert replace(VALID, docdb_engine_version="8.0.0").docdb_parameter_family == "docdb8.0"
    assert VALID.graceful_shutdown_s == 110 < VALID.stop_timeout_s
    assert VALID.effective_inference_profile_ids[0] == "us.anthropic.claude-opus-5-5"
    assert VALID.effective_bedrock_region == "us-east-1"
    assert replace(VALID, bedrock_region="us-west-2").effective_bedrock_region == "us-west-2"
    assert not VALID.https and replace(VALID, certificate_arn=CERT).https


@pytest.mark.parametrize(
    ("project", "stack", "expected"),
    [
        ("claude-code-proxy", "dev", "claude-code-proxy-dev"),
        ("claude-code-proxy", "Prod_EU", "claude-code-proxy-prod-eu"),
        ("9lives", "x", "p-9lives-x"),
        ("claude-code-proxy", "a-very-long-stack-name-that-goes-on-and-on", "claude-code-proxy-a-very-long-stack-name"),
    ],
)
def test_resource_prefix_is_a_valid_docdb_identifier(project: str, stack: str, expected: str) -> None:
    prefix = resource_prefix(project, stack)
    assert prefix == expected
    assert len(prefix) <= 40 and prefix[0].isalpha() and "--" not in prefix and not prefix.endswith("-")


def test_default_model_ids_cover_what_claude_code_asks_for() -> None:
    """The task role must allow the Bedrock ids the app maps Claude Code's default models to."""
    from app.bedrock.models import resolve_model
    from infra.stack_config import DEFAULT_BEDROCK_MODEL_IDS

    for model in ("claude-opus-5-5", "claude-sonnet-5-5", "claude-haiku-5-5", "claude-sonnet-4-6",
                  "claude-opus-4-6", "claude-sonnet-4-5-20250929", "claude-haiku-4-5-20251001"):
        profile = resolve_model(model, overrides={}, profile_prefix="us").model_id
        assert profile.removeprefix("us.") in DEFAULT_BEDROCK_MODEL_IDS, model
