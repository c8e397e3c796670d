"""ApiChoice (app/bedrock/api_choice.py): which requests go to InvokeModel instead of Converse."""

from __future__ import annotations

from typing import Any

import pytest

from app.bedrock.api_choice import ApiChoice
from app.bedrock.models import resolve_model

PLAIN: dict[str, Any] = {"tools": [{"name": "Read", "input_schema": {"type": "object"}}]}
DEFERRED: dict[str, Any] = {"tools": [{"name": "Read", "input_schema": {"type": "object"}, "defer_loading": True}]}


def model(name: str) -> Any:
    return resolve_model(name, overrides={}, profile_prefix="us")


def test_converse_is_the_default_for_everything() -> None:
    choice = ApiChoice()
    assert choice.invoke_reason(PLAIN, model("claude-opus-4-5")) is None
    assert choice.invoke_reason(DEFERRED, model("claude-opus-4-5")) is None


@pytest.mark.parametrize(("pattern", "name", "expected"), [
    ("claude-opus-4-5", "claude-opus-4-5-20251101", True),  # the base id matches a dated id
    ("claude-opus-4-5", "claude-sonnet-4-5", False),
    ("claude-opus-*", "claude-opus-4-6", True),
    ("CLAUDE-OPUS-*", "claude-opus-4-6[1m]", True),
    ("*", "claude-haiku-4-5", True),
    ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5-20250929", True),  # the exact id as sent
    ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5", False),
])
def test_configured_models_use_invoke_for_every_request(pattern: str, name: str, expected: bool) -> None:
    reason = ApiChoice(invoke_models=(pattern,)).invoke_reason({}, model(name))
    assert reason == ("configured" if expected else None)


def test_when_needed_models_use_invoke_only_for_tool_search() -> None:
    choice = ApiChoice(invoke_when_needed_models=("*",))
    assert choice.invoke_reason(PLAIN, model("claude-opus-4-5")) is None
    assert choice.invoke_reason(DEFERRED, model("claude-opus-4-5")) == "tool_search"
    # Bedrock has no tool search for this model: Converse serves it (deferred tools sent as ordinary ones).
    assert choice.invoke_reason(DEFERRED, model("claude-haiku-4-5")) is None


def test_configured_wins_over_tool_search() -> None:
    choice = ApiChoice(invoke_models=("claude-haiku-*",), invoke_when_needed_models=("*",))
    assert choice.invoke_reason(DEFERRED, model("claude-haiku-4-5")) == "configured"


def test_blank_patterns_match_nothing() -> None:
    assert ApiChoice(invoke_models=("", "  ")).invoke_reason({}, model("claude-opus-4-5")) is None
