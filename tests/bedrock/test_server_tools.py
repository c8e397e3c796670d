"""app/bedrock/server_tools.py: a forced tool Bedrock cannot run is answered, never silently dropped.

The answer is checked with the official ``anthropic`` SDK's own types, and its SSE form through the
SDK's stream accumulator (served by an ``httpx2`` MockTransport)."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import httpx2
import pytest

from app.bedrock.server_tools import (UNAVAILABLE_TEXT, answer_without_bedrock, forced_unrunnable_tool,
                                      render_answer, to_stream_events)
from app.errors import InvalidRequest
from tests.support.constants import MODEL

WEB_SEARCH = {"type": "web_search_20250305", "name": "web_search", "max_uses": 8,
              "allowed_domains": ["docs.python.org"]}
READ = {"name": "Read", "input_schema": {"type": "object"}}
# What Claude Code's WebSearch tool sends (2.1.x): the server tool alone, forced.
CLAUDE_CODE_WEB_SEARCH = {
    "model": MODEL, "max_tokens": 32000, "stream": True,
    "system": [{"type": "text", "text": "You are an assistant for performing a web search tool use"}],
    "messages": [{"role": "user", "content": [{"type": "text", "text": "Perform a web search for the query: python 3.14 release date"}]}],
    "tools": [WEB_SEARCH], "tool_choice": {"type": "tool", "name": "web_search"},
}


def params(**extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}], **extra}


@pytest.mark.parametrize("request_params", [
    params(),
    params(tools=[READ, WEB_SEARCH]),  # offered, not forced: the model may answer without it
    params(tools=[READ, WEB_SEARCH], tool_choice={"type": "auto"}),
    params(tools=[READ, WEB_SEARCH], tool_choice={"type": "any"}),  # Read can satisfy "any"
    params(tools=[READ, WEB_SEARCH], tool_choice={"type": "tool", "name": "Read"}),
    params(tools=[WEB_SEARCH], tool_choice={"type": "none"}),
], ids=["no-tools", "offered", "auto", "any-with-custom", "forced-custom", "none"])
def test_requests_bedrock_can_serve_go_to_bedrock(request_params: dict[str, Any]) -> None:
    assert forced_unrunnable_tool(request_params) is None
    assert answer_without_bedrock(request_params, model=MODEL) is None


def test_claude_codes_forced_web_search_is_answered_as_unavailable() -> None:
    message = answer_without_bedrock(CLAUDE_CODE_WEB_SEARCH, model=MODEL, message_id="msg_bdrk_x")
    assert message is not None
    parsed = anthropic.types.Message.model_validate(message)  # the SDK's own shapes, strictly typed
    use, result, text = parsed.content
    assert use.type == "server_tool_use" and use.name == "web_search" and use.id.startswith("srvtoolu_")
    assert use.input == {"query": "Perform a web search for the query: python 3.14 release date"}
    assert result.type == "web_search_tool_result" and result.tool_use_id == use.id
    assert result.content.type == "web_search_tool_result_error" and result.content.error_code == "unavailable"
    assert text.type == "text" and text.text == UNAVAILABLE_TEXT
    assert (parsed.model, parsed.id, parsed.stop_reason) == (MODEL, "msg_bdrk_x", "end_turn")
    assert parsed.usage.input_tokens == parsed.usage.output_tokens == 0
    assert parsed.usage.server_tool_use.web_search_requests == 0


def test_any_over_server_tools_only_forces_the_web_search() -> None:
    request_params = params(tools=[{"type": "web_fetch_20250910", "name": "web_fetch"}, WEB_SEARCH],
                            tool_choice={"type": "any"})
    assert forced_unrunnable_tool(request_params) == WEB_SEARCH
    assert answer_without_bedrock(request_params, model=MODEL)["content"][1]["type"] == "web_search_tool_result"


@pytest.mark.parametrize("tool", [
    {"type": "code_execution_20250825", "name": "code_execution"},
    {"type": "web_fetch_20250910", "name": "web_fetch"},
    {"type": "bash_20250124", "name": "bash"},
])
def test_other_forced_tools_are_a_400_naming_the_tool(tool: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequest) as info:
        answer_without_bedrock(params(tools=[READ, tool], tool_choice={"type": "tool", "name": tool["name"]}), model=MODEL)
    assert repr(tool["name"]) in info.value.message and tool["type"] in info.value.message
    assert info.value.status_code == 400


def test_query_is_the_last_user_text_and_bounded() -> None:
    long_question = "why " * 400
    request_params = {**CLAUDE_CODE_WEB_SEARCH, "messages": [
        {"role": "user", "content": "first"}, {"role": "assistant", "content": "ok"},
        {"role": "user", "content": [{"type": "image", "source": {}}, {"type": "text", "text": long_question}]}]}
    query = answer_without_bedrock(request_params, model=MODEL)["content"][0]["input"]["query"]
    assert query.startswith("why why") and len(query) == 500


_BODY: list[bytes] = [b""]
_CLIENT = anthropic.Anthropic(api_key="x", base_url="http://test", max_retries=0, http_client=httpx2.Client(
    transport=httpx2.MockTransport(lambda request: httpx2.Response(
        200, headers={"content-type": "text/event-stream"}, content=_BODY[0]))))


def test_streamed_answer_accumulates_to_the_same_message_in_the_sdk() -> None:
    message = answer_without_bedrock(CLAUDE_CODE_WEB_SEARCH, model=MODEL)
    body, headers = render_answer(message, stream=True)
    assert ("content-type", "text/event-stream; charset=utf-8") in headers
    _BODY[0] = body
    with _CLIENT.messages.stream(**{k: v for k, v in CLAUDE_CODE_WEB_SEARCH.items() if k != "stream"}) as stream:
        final = stream.get_final_message()
    assert final.model_dump(exclude_none=True) == anthropic.types.Message.model_validate(message).model_dump(exclude_none=True)


def test_stream_events_follow_anthropics_grammar() -> None:
    events = to_stream_events(answer_without_bedrock(CLAUDE_CODE_WEB_SEARCH, model=MODEL))
    assert [e["type"] for e in events] == [
        "message_start",
        "content_block_start", "content_block_delta", "content_block_stop",  # server_tool_use + its input
        "content_block_start", "content_block_stop",  # web_search_tool_result arrives whole
        "content_block_start", "content_block_delta", "content_block_stop",  # text
        "message_delta", "message_stop"]
    assert events[1]["content_block"]["input"] == {}
    assert json.loads(events[2]["delta"]["partial_json"]) == {"query": "Perform a web search for the query: python 3.14 release date"}


def test_json_answer_is_compact_json() -> None:
    message = answer_without_bedrock(CLAUDE_CODE_WEB_SEARCH, model=MODEL)
    body, headers = render_answer(message, stream=False)
    assert headers == [("content-type", "application/json")] and json.loads(body) == message


def test_to_stream_events_replays_thinking_and_tool_use() -> None:
    message = {"id": "msg_1", "type": "message", "role": "assistant", "model": MODEL,
               "content": [{"type": "thinking", "thinking": "hmm", "signature": "sig"},
                           {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {"path": "a"}}],
               "stop_reason": "tool_use", "stop_sequence": None, "usage": {"input_tokens": 3, "output_tokens": 4}}
    _BODY[0] = render_answer(message, stream=True)[0]
    with _CLIENT.messages.stream(**params()) as stream:
        final = stream.get_final_message()
    assert final.model_dump(exclude_none=True) == anthropic.types.Message.model_validate(message).model_dump(exclude_none=True)
