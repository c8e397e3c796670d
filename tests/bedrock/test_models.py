"""app/bedrock/models.py: default table, profile prefixes, overrides, unknown claude-* rule, NotFound."""

from __future__ import annotations

import pytest

from app.bedrock.models import MODELS, resolve_model
from app.errors import NotFound

CURRENT = [
    "claude-opus-5-5", "claude-sonnet-5-5", "claude-haiku-5-5", "claude-opus-5", "claude-sonnet-5",
    "claude-opus-4-8", "claude-opus-4-7", "claude-opus-4-6", "claude-sonnet-4-6",
    "claude-haiku-4-5", "claude-haiku-4-5-20251001", "claude-opus-4-5", "claude-opus-4-5-20251101",
    "claude-sonnet-4-5", "claude-sonnet-4-5-20250929", "claude-opus-4-1", "claude-opus-4-1-20250805",
    "claude-sonnet-4", "claude-sonnet-4-20250514", "claude-sonnet-4-0", "claude-opus-4-20250514",
    "claude-3-7-sonnet", "claude-3-7-sonnet-20250219", "claude-3-7-sonnet-latest", "claude-3-5-haiku-20241022",
]

DOCUMENTED = {  # from platform.claude.com/docs/en/build-with-claude/claude-on-amazon-bedrock-legacy
    "claude-opus-4-6": "anthropic.claude-opus-4-6-v1",
    "claude-sonnet-4-6": "anthropic.claude-sonnet-4-6",
    "claude-sonnet-4-5-20250929": "anthropic.claude-sonnet-4-5-20250929-v1:0",
    "claude-haiku-4-5-20251001": "anthropic.claude-haiku-4-5-20251001-v1:0",
    "claude-opus-4-5-20251101": "anthropic.claude-opus-4-5-20251101-v1:0",
    "claude-opus-4-1-20250805": "anthropic.claude-opus-4-1-20250805-v1:0",
    "claude-sonnet-4-20250514": "anthropic.claude-sonnet-4-20250514-v1:0",
    "claude-3-7-sonnet-20250219": "anthropic.claude-3-7-sonnet-20250219-v1:0",
}


@pytest.mark.parametrize("name", CURRENT)
def test_every_current_model_resolves_to_an_inference_profile(name: str) -> None:
    model = resolve_model(name, overrides={}, profile_prefix="us")
    assert model.model_id.startswith("us.anthropic.claude-")
    assert model.anthropic_model == name
    assert model.base_id in MODELS


@pytest.mark.parametrize(("name", "foundation_id"), DOCUMENTED.items())
def test_documented_ids(name: str, foundation_id: str) -> None:
    assert resolve_model(name, overrides={}, profile_prefix="us").model_id == f"us.{foundation_id}"


@pytest.mark.parametrize("prefix", ["us", "eu", "apac", "global"])
def test_profile_prefix_is_applied(prefix: str) -> None:
    model = resolve_model("claude-sonnet-4-5", overrides={}, profile_prefix=prefix)
    assert model.model_id == f"{prefix}.anthropic.claude-sonnet-4-5-20250929-v1:0"


def test_global_falls_back_to_us_for_a_model_without_a_global_profile() -> None:
    assert resolve_model("claude-opus-4-1", overrides={}, profile_prefix="global").model_id.startswith("us.")


def test_named_geography_is_kept_even_without_a_profile_there() -> None:
    # Data residency is never silently moved; Bedrock will answer 400 and an override fixes it.
    assert resolve_model("claude-opus-4-1", overrides={}, profile_prefix="eu").model_id.startswith("eu.")


def test_dated_aliases_and_suffixes_share_the_base_entry() -> None:
    ids = {resolve_model(n, overrides={}, profile_prefix="us").model_id
           for n in ("claude-sonnet-4-5", "claude-sonnet-4-5-20250929", "claude-sonnet-4-5[1m]", "Claude-Sonnet-4-5")}
    assert ids == {"us.anthropic.claude-sonnet-4-5-20250929-v1:0"}


def test_1m_suffix_sets_context_1m_only_where_supported() -> None:
    assert resolve_model("claude-sonnet-4-5[1m]", overrides={}, profile_prefix="us").context_1m
    assert not resolve_model("claude-haiku-4-5[1m]", overrides={}, profile_prefix="us").context_1m
    assert not resolve_model("claude-sonnet-4-5", overrides={}, profile_prefix="us").context_1m


def test_overrides_win_and_are_used_verbatim() -> None:
    arn = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/x1"
    model = resolve_model("claude-sonnet-4-5-20250929", overrides={"claude-sonnet-4-5-20250929": arn}, profile_prefix="eu")
    assert model.model_id == arn
    assert model.supports_cache_points and not model.supports_adaptive_thinking  # capabilities still from the table


def test_override_by_base_id_covers_dated_spellings() -> None:
    model = resolve_model("claude-opus-4-6[1m]", overrides={"claude-opus-4-6": "my-profile"}, profile_prefix="us")
    assert model.model_id == "my-profile"


def test_override_can_map_a_non_claude_name() -> None:
    assert resolve_model("my-alias", overrides={"my-alias": "us.anthropic.claude-opus-4-6-v1"},
                         profile_prefix="us").model_id == "us.anthropic.claude-opus-4-6-v1"


def test_unknown_claude_model_follows_the_newest_pattern() -> None:
    model = resolve_model("claude-opus-6-20270101", overrides={}, profile_prefix="eu")
    assert model.model_id == "eu.anthropic.claude-opus-6"
    assert model.supports_adaptive_thinking and model.supports_effort


@pytest.mark.parametrize("name", ["gpt-4o", "", "claude-", "llama3"])
def test_non_claude_models_are_not_found_and_named(name: str) -> None:
    with pytest.raises(NotFound) as info:
        resolve_model(name, overrides={}, profile_prefix="us")
    assert (name or "(empty)") in info.value.message
    assert info.value.status_code == 404


def test_capabilities_come_from_the_table() -> None:
    resolve = lambda n: resolve_model(n, overrides={}, profile_prefix="us")
    assert not resolve("claude-3-5-haiku").supports_thinking
    assert not resolve("claude-3-7-sonnet").supports_interleaved_thinking
    assert resolve("claude-opus-4-6").supports_adaptive_thinking
    assert resolve("claude-opus-4-5").supports_effort and not resolve("claude-sonnet-4-5").supports_effort


@pytest.mark.parametrize("anthropic_model, adaptive_only", [
    ("claude-opus-4-7", True), ("claude-opus-4-8", True), ("claude-opus-5", True), ("claude-opus-5-5", True),
    ("claude-haiku-5-5", True), ("claude-mythos-5", True),  # unknown Claude: newest rules
    ("claude-opus-4-6", False), ("claude-sonnet-4-6", False), ("claude-sonnet-4-5", False), ("claude-opus-4-5", False),
])
def test_adaptive_only_models_come_from_the_table(anthropic_model: str, adaptive_only: bool) -> None:
    model = resolve_model(anthropic_model, overrides={}, profile_prefix="us")
    assert model.adaptive_thinking_only is adaptive_only
    assert not adaptive_only or model.supports_adaptive_thinking


@pytest.mark.parametrize("anthropic_model, ttl_1h", [
    ("claude-haiku-4-5", True), ("claude-sonnet-4-5", True), ("claude-opus-4-5", True), ("claude-sonnet-4-6", True),
    ("claude-opus-4-8", True), ("claude-haiku-5-5", True), ("claude-mythos-5", True),  # unknown Claude: newest rules
    ("claude-opus-4-1", False), ("claude-sonnet-4", False), ("claude-3-7-sonnet", False), ("claude-3-5-haiku", False),
])
def test_the_1h_cache_ttl_comes_from_the_table(anthropic_model: str, ttl_1h: bool) -> None:
    assert resolve_model(anthropic_model, overrides={}, profile_prefix="eu").supports_cache_ttl_1h is ttl_1h


@pytest.mark.parametrize("override, expected", [
    (None, "anthropic.claude-sonnet-4-5-20250929-v1:0"),  # the table's foundation id, not the profile
    ("global.anthropic.claude-sonnet-4-5-20250929-v1:0", "anthropic.claude-sonnet-4-5-20250929-v1:0"),
    ("anthropic.claude-sonnet-4-5-20250929-v1:0", "anthropic.claude-sonnet-4-5-20250929-v1:0"),
    ("arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc",  # unknown: the override itself
     "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc"),
])
def test_count_tokens_model_id_is_the_foundation_model(override: str | None, expected: str) -> None:
    overrides = {"claude-sonnet-4-5": override} if override else {}
    model = resolve_model("claude-sonnet-4-5-20250929", overrides=overrides, profile_prefix="us")
    assert model.count_tokens_model_id == expected
    assert model.model_id == (override or "us.anthropic.claude-sonnet-4-5-20250929-v1:0")
