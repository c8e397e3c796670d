"""Recognising a rejected replayed thinking signature (app/proxy/thinking.py)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from app.proxy.thinking import error_message, has_replayed_thinking, is_signature_rejection, strip_foreign_thinking


@pytest.mark.parametrize("message", [
    "messages.1.content.0: Invalid `signature` in `thinking` block",
    "The provided `signature` in `thinking` block is invalid",
    "messages.3.content.0.redacted_thinking.data: invalid signature",
    "The model returned the following errors: messages.3.content.0.thinking.signature: Field required",
    "thinking signature has expired or is invalid",
    "This model doesn't support the reasoningContent.reasoningText.signature field.",
])
def test_signature_rejections_are_recognised(message: str) -> None:
    assert is_signature_rejection(message)


@pytest.mark.parametrize("message", [
    "messages: roles must alternate between \"user\" and \"assistant\"",
    "max_tokens: 200000 > 128000, which is the maximum allowed number of output tokens",
    "The request signature we calculated does not match the signature you provided.",
    "",
])
def test_other_errors_are_not(message: str) -> None:
    assert not is_signature_rejection(message)


def test_has_replayed_thinking_looks_at_assistant_turns_only() -> None:
    thinking = {"type": "thinking", "thinking": "t", "signature": "s"}
    assert has_replayed_thinking({"messages": [{"role": "assistant", "content": [thinking]}]})
    assert has_replayed_thinking({"messages": [{"role": "assistant", "content": [{"type": "redacted_thinking",
                                                                                  "data": "x"}]}]})
    assert not has_replayed_thinking({"messages": [{"role": "user", "content": [thinking]}]})
    assert not has_replayed_thinking({"messages": [{"role": "assistant", "content": "plain"}]})
    assert not has_replayed_thinking({})


def test_error_message_reads_the_envelope_or_nothing() -> None:
    body = json.dumps({"type": "error", "error": {"type": "invalid_request_error", "message": "m"}}).encode()
    assert error_message(body) == "m"
    assert error_message(b"not json") == "" and error_message(b"[]") == ""


def params(**fields: Any) -> dict[str, Any]:
    return {"model": "claude-sonnet-4-5", "max_tokens": 100, **fields}


def test_strip_foreign_thinking_removes_only_assistant_thinking() -> None:
    original = params(messages=[
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "t", "signature": "s"},
                                          {"type": "redacted_thinking", "data": "AAAA"}, {"type": "text", "text": "a"}]},
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "only", "signature": "s"}]},
        {"role": "user", "content": "q2"}])
    snapshot = copy.deepcopy(original)
    stripped = strip_foreign_thinking(original)
    assert original == snapshot
    assert stripped["messages"] == [{"role": "user", "content": "q"},
                                    {"role": "assistant", "content": [{"type": "text", "text": "a"}]},
                                    {"role": "user", "content": "q2"}]
    assert stripped["max_tokens"] == 100


def _tool_loop(**extra: Any) -> dict[str, Any]:
    return params(thinking={"type": "adaptive"}, **extra, messages=[
        {"role": "user", "content": "run it"},
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "t", "signature": "foreign"},
                                          {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "ok"}]}])


def test_strip_in_a_tool_loop_also_turns_thinking_off() -> None:
    management = {"edits": [{"type": "clear_thinking_20251015", "keep": "all"},
                            {"type": "clear_tool_uses_20250919"}]}
    stripped = strip_foreign_thinking(_tool_loop(context_management=management))
    assert "thinking" not in stripped
    assert stripped["context_management"] == {"edits": [{"type": "clear_tool_uses_20250919"}]}
    assert stripped["messages"][1]["content"][0]["type"] == "tool_use"
    only_thinking_edits = strip_foreign_thinking(_tool_loop(context_management={"edits": management["edits"][:1]}))
    assert "context_management" not in only_thinking_edits


def test_strip_outside_a_tool_loop_keeps_thinking_on() -> None:
    stripped = strip_foreign_thinking(params(thinking={"type": "adaptive"}, messages=[
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "t", "signature": "s"},
                                          {"type": "text", "text": "a"}]},
        {"role": "user", "content": "q2"}]))
    assert stripped["thinking"] == {"type": "adaptive"}
