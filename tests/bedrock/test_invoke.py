"""to_invoke_body (app/bedrock/invoke.py): Messages params -> the native InvokeModel body, with and
without tool search; needs_tool_search / supports_tool_search."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from app.bedrock.invoke import (TOOL_SEARCH_BETA, invoke_body_bytes, needs_tool_search, supports_tool_search,
                                to_invoke_body)
from app.bedrock.models import resolve_model
from tests.fakes.bedrock_server import native_body_error

OPUS = resolve_model("claude-opus-4-5-20251101", overrides={}, profile_prefix="us")
HAIKU = resolve_model("claude-haiku-4-5", overrides={}, profile_prefix="us")
TOOL = {"name": "Read", "input_schema": {"type": "object"}}
DEFERRED = {"name": "mcp__db__query", "input_schema": {"type": "object"}, "defer_loading": True,
            "input_examples": [{"sql": "select 1"}]}
TOOL_SEARCH = {"type": "tool_search_tool_bm25_20251119", "name": "tool_search_tool_bm25"}
WEB_SEARCH = {"type": "web_search_20250305", "name": "web_search"}


def params(**extra: Any) -> dict[str, Any]:
    return {"model": "claude-opus-4-5", "max_tokens": 100, "stream": True,
            "messages": [{"role": "user", "content": "hi"}], **extra}


def tool_search_history() -> list[dict[str, Any]]:
    return [
        {"role": "user", "content": "query the db"},
        {"role": "assistant", "content": [
            {"type": "server_tool_use", "id": "srvtoolu_1", "name": "tool_search_tool_bm25", "input": {"query": "db"}},
            {"type": "tool_search_tool_result", "tool_use_id": "srvtoolu_1", "content": {
                "type": "tool_search_tool_search_result",
                "tool_references": [{"type": "tool_reference", "tool_name": "mcp__db__query"}]}},
            {"type": "server_tool_use", "id": "srvtoolu_2", "name": "web_search", "input": {"query": "x"}},
            {"type": "tool_use", "id": "toolu_1", "name": "ToolSearch", "input": {"query": "db"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": [
            {"type": "tool_reference", "tool_name": "mcp__db__query"}]}]}]


@pytest.mark.parametrize(("tools", "expected"), [
    ([TOOL], False), ([TOOL, DEFERRED], True), ([TOOL, TOOL_SEARCH], True), ([WEB_SEARCH], False),
    ([{**TOOL, "defer_loading": False}], False), ([], False)])
def test_needs_tool_search(tools: list[dict[str, Any]], expected: bool) -> None:
    assert needs_tool_search({"tools": tools}) is expected


def test_tool_search_is_a_capability_of_the_model() -> None:
    assert supports_tool_search(OPUS) and not supports_tool_search(HAIKU)
    unknown = resolve_model("claude-opus-9", overrides={}, profile_prefix="us")
    assert supports_tool_search(unknown)  # newer than the table: assumed to have it


def test_tool_search_body_keeps_what_only_the_native_api_carries() -> None:
    request = params(tools=[TOOL, DEFERRED, TOOL_SEARCH, WEB_SEARCH], messages=tool_search_history())
    original = copy.deepcopy(request)
    body = to_invoke_body(request, OPUS, betas=["advanced-tool-use-2025-11-20"], tool_search=True)
    assert request == original
    assert body["anthropic_beta"] == [TOOL_SEARCH_BETA]
    assert body["tools"] == [TOOL, {k: v for k, v in DEFERRED.items() if k != "input_examples"}, TOOL_SEARCH]
    assistant = body["messages"][1]["content"]
    assert [b["type"] for b in assistant] == ["server_tool_use", "tool_search_tool_result", "tool_use"]
    assert body["messages"][2]["content"][0]["content"] == [{"type": "tool_reference", "tool_name": "mcp__db__query"}]
    assert native_body_error(body) is None


def test_without_tool_search_the_body_is_what_converse_can_say() -> None:
    body = to_invoke_body(params(tools=[TOOL, DEFERRED, TOOL_SEARCH], messages=tool_search_history()), HAIKU,
                          betas=[])
    assert "anthropic_beta" not in body
    assert body["tools"] == [TOOL, {"name": "mcp__db__query", "input_schema": {"type": "object"}}]
    assert [b["type"] for b in body["messages"][1]["content"]] == ["tool_use"]
    assert body["messages"][2]["content"][0]["content"] == [{"type": "text", "text": "Tool mcp__db__query is available."}]
    assert native_body_error(body) is None


def test_cache_control_scope_is_dropped_and_ttl_kept() -> None:
    cache_control = {"type": "ephemeral", "ttl": "1h", "scope": "global"}
    body = to_invoke_body(params(
        system=[{"type": "text", "text": "sys", "cache_control": cache_control}],
        tools=[{**TOOL, "cache_control": cache_control}],
        messages=[{"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": cache_control}]}]),
        OPUS, betas=[])
    kept = {"type": "ephemeral", "ttl": "1h"}
    assert body["system"][0]["cache_control"] == kept
    assert body["tools"][0]["cache_control"] == kept
    assert body["messages"][0]["content"][0]["cache_control"] == kept


def test_top_level_fields_bedrock_refuses_are_left_out() -> None:
    body = to_invoke_body(params(context_management={"edits": []}, service_tier="auto", metadata={"user_id": "u"},
                                 container="c", mcp_servers=[], temperature=0.5), OPUS, betas=[])
    assert set(body) == {"anthropic_version", "max_tokens", "messages", "temperature"}
    assert invoke_body_bytes(body).startswith(b'{"anthropic_version":"bedrock-2023-05-31"')


def test_the_fake_refuses_tool_search_fields_without_the_beta() -> None:
    """The fake Bedrock's check the tests above lean on can fail: tool search without its beta is a 400."""
    body = to_invoke_body(params(tools=[TOOL, DEFERRED, TOOL_SEARCH]), OPUS, betas=[], tool_search=True)
    assert native_body_error(body) is None
    assert "defer_loading" in (native_body_error({**body, "anthropic_beta": []}) or "")
    assert "tool_search_tool_bm25" in (native_body_error({**body, "tools": [TOOL_SEARCH], "anthropic_beta": []}) or "")
