"""InvokeModel as an option (issue 13), end to end inside the test process: the official ``anthropic``
SDK (and raw httpx where the bytes matter) -> the proxy -> a fake Anthropic answering 429/529 and a
fake Bedrock serving ``/invoke`` and ``/invoke-with-response-stream`` in the real event-stream framing
to the real aioboto3 client.

Covers: a configured model (JSON and stream, tools whose ids round-trip, thinking, usage recorded
once with cache tokens, invocation metrics never reaching the client), the cooldown, an invoke error
mapped as Converse's is, the thinking-signature retry, a Converse model staying on Converse, and a
tool-search request routed to InvokeModel with its native fields."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest

from app.store.usage import EVENTS
from tests.conftest import CLIENT_API_KEY, RunningProxy, make_settings, start_proxy
from tests.fakes.anthropic_server import FakeAnthropic, overloaded_reply, rate_limit_reply
from tests.fakes.bedrock_server import (DEFAULT_TEXT as BEDROCK_TEXT, DEFAULT_USAGE as BEDROCK_USAGE,
                                        METRICS_KEY, NATIVE_MODEL, FakeBedrock, converse_reasoning,
                                        converse_tool_use, exception_mid_stream, http_error, is_invoke,
                                        native_stream_reply, stream_reasoning, stream_text,
                                        stream_tool_use)
from tests.support.sse import sse_events

INVOKE_MODEL = "claude-opus-4-5"  # configured for InvokeModel below
CONVERSE_MODEL = "claude-sonnet-4-6"  # not configured: Converse
HELLO = {"model": INVOKE_MODEL, "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}
TOOL = {"name": "get_weather", "description": "Weather for a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}
TOOL_SEARCH = {"type": "tool_search_tool_regex_20251119", "name": "tool_search_tool_regex"}
CLAUDE_CODE_REQUEST = Path(__file__).parents[1] / "fixtures" / "claude_code_request.json"
FOREIGN_ID = "functions.Read:0"  # an id another provider minted: not in Bedrock's alphabet


@pytest.fixture
def iv_proxy(fake_anthropic: FakeAnthropic, fake_bedrock: FakeBedrock) -> Iterator[RunningProxy]:
    yield from start_proxy(make_settings(fake_anthropic.url, bedrock_endpoint_url=fake_bedrock.url,
                                         default_fallback_policy="anthropic_first", bedrock_read_timeout_s=10.0,
                                         bedrock_invoke_models=["claude-opus-4-*"],
                                         bedrock_invoke_when_needed_models=["claude-sonnet-*"]))


def sdk(proxy: RunningProxy, *, key: str | None = None) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key=CLIENT_API_KEY, base_url=proxy.url, max_retries=0,
                               default_headers={"x-proxy-key": key or proxy.key})


def bedrock_key(proxy: RunningProxy) -> str:
    return str(proxy.new_key(fallback_policy="bedrock_only")["key"])


def stream_raw(proxy: RunningProxy, body: dict[str, Any], *, key: str) -> httpx.Response:
    with httpx.stream("POST", f"{proxy.url}/v1/messages", json={**body, "stream": True}, timeout=30,
                      headers={"x-proxy-key": key, "x-api-key": CLIENT_API_KEY}) as response:
        response.read()
    return response



def last_event(proxy: RunningProxy, **params: str) -> dict[str, Any]:
    proxy.wait_for_usage(lambda t: t["requests"] >= 1, **params)

    async def newest() -> dict[str, Any]:
        docs = await proxy.services.store.db[EVENTS].find({}).sort("time", -1).limit(1).to_list(1)
        return docs[0]

    return asyncio.run(newest())


def test_429_falls_back_through_invoke_model_then_cooldown(iv_proxy: RunningProxy, fake_anthropic: FakeAnthropic,
                                                           fake_bedrock: FakeBedrock) -> None:
    fake_anthropic.enqueue(rate_limit_reply(retry_after_s=30))
    first = sdk(iv_proxy).messages.with_raw_response.create(**HELLO)
    message = first.parse()
    assert first.headers["x-proxy-provider"] == "bedrock"
    assert first.headers["x-proxy-fallback-reason"].startswith("rate_limit")
    assert message.content[0].text == BEDROCK_TEXT
    assert message.model == INVOKE_MODEL and message.id.startswith("msg_bdrk_")
    assert message.usage.cache_read_input_tokens == BEDROCK_USAGE["cacheReadInputTokens"]
    assert message.usage.cache_creation_input_tokens == BEDROCK_USAGE["cacheWriteInputTokens"]

    second = sdk(iv_proxy).messages.with_raw_response.create(**HELLO)
    assert second.headers["x-proxy-fallback-reason"].startswith("cooldown:")
    assert len(fake_anthropic.messages_requests()) == 1, "the cooldown must skip Anthropic"

    calls = fake_bedrock.calls("InvokeModel")
    assert len(calls) == 2 and not fake_bedrock.calls("Converse")
    assert calls[0].model_id.startswith("us.anthropic.claude-opus-4-5")
    assert calls[0].header("content-type") == "application/json"
    body = calls[0].json()
    assert body["anthropic_version"] == "bedrock-2023-05-31"
    assert "model" not in body and "stream" not in body
    for call in calls:
        assert all(CLIENT_API_KEY not in value for _, value in call.headers)
        assert call.header("authorization").startswith("AWS4-HMAC-SHA256")

    totals = iv_proxy.wait_for_usage(lambda t: t["requests"] >= 2, provider="bedrock")
    assert totals["requests"] == 2
    assert totals["input_tokens"] == 2 * BEDROCK_USAGE["inputTokens"]
    event = last_event(iv_proxy)
    assert (event["provider"], event["model"], event["provider_model"]) == ("bedrock", INVOKE_MODEL,
                                                                             calls[-1].model_id)
    assert event["cache_read_input_tokens"] == BEDROCK_USAGE["cacheReadInputTokens"]
    assert event["cache_creation_input_tokens"] == BEDROCK_USAGE["cacheWriteInputTokens"]
    assert event["notes"] == ["invoke_model:configured"]


def test_stream_through_invoke_is_accepted_by_the_sdk_and_recorded_once(
        iv_proxy: RunningProxy, fake_anthropic: FakeAnthropic, fake_bedrock: FakeBedrock) -> None:
    fake_anthropic.enqueue(overloaded_reply())
    fake_bedrock.enqueue(stream_reasoning("let me think", then_text="the answer", chunk=3))
    with sdk(iv_proxy).messages.stream(**HELLO, thinking={"type": "enabled", "budget_tokens": 1024}) as stream:
        final = stream.get_final_message()
    assert [block.type for block in final.content] == ["thinking", "text"]
    assert final.content[0].thinking == "let me think" and final.content[0].signature
    assert final.content[1].text == "the answer"
    assert final.model == INVOKE_MODEL and final.id.startswith("msg_bdrk_") and final.stop_reason == "end_turn"
    assert final.usage.output_tokens == BEDROCK_USAGE["outputTokens"]
    assert final.usage.input_tokens == BEDROCK_USAGE["inputTokens"]
    assert final.usage.cache_read_input_tokens == BEDROCK_USAGE["cacheReadInputTokens"]
    (call,) = fake_bedrock.calls("InvokeModelWithResponseStream")
    assert call.json()["thinking"] == {"type": "enabled", "budget_tokens": 1024}

    totals = iv_proxy.wait_for_usage(lambda t: t["requests"] >= 1, provider="bedrock")
    assert totals["requests"] == 1
    assert totals["output_tokens"] == BEDROCK_USAGE["outputTokens"]
    assert totals["input_tokens"] == BEDROCK_USAGE["inputTokens"]


def test_stream_bytes_name_the_client_model_and_never_the_metrics(iv_proxy: RunningProxy,
                                                                  fake_bedrock: FakeBedrock) -> None:
    fake_bedrock.enqueue(stream_text("abcdefghij", chunk=4))
    response = stream_raw(iv_proxy, HELLO, key=bedrock_key(iv_proxy))
    assert response.headers["content-type"].startswith("text/event-stream")
    assert METRICS_KEY.encode() not in response.content and NATIVE_MODEL.encode() not in response.content
    events = sse_events(response.content)
    names = [name for name, _ in events]
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
    assert events[0][1]["message"]["model"] == INVOKE_MODEL
    assert "".join(e["delta"]["text"] for name, e in events if name == "content_block_delta") == "abcdefghij"


def test_tool_use_ids_round_trip_through_invoke(iv_proxy: RunningProxy, fake_bedrock: FakeBedrock) -> None:
    key = bedrock_key(iv_proxy)
    fake_bedrock.enqueue(converse_tool_use("get_weather", {"city": "Paris"}, text="Checking."))
    answer = sdk(iv_proxy, key=key).messages.create(**HELLO, tools=[TOOL])
    tool_use = answer.content[-1]
    assert answer.stop_reason == "tool_use" and tool_use.type == "tool_use"
    assert tool_use.name == "get_weather" and tool_use.input == {"city": "Paris"}

    # A conversation that carries an id another provider minted: Bedrock sees an id in its alphabet,
    # and a tool_use Bedrock echoes with that id reaches the client as the client's own id.
    history = [{"role": "user", "content": "weather?"},
               {"role": "assistant", "content": [{"type": "tool_use", "id": FOREIGN_ID, "name": "get_weather",
                                                  "input": {"city": "Oslo"}}]},
               {"role": "user", "content": [{"type": "tool_result", "tool_use_id": FOREIGN_ID, "content": "-3 C"}]}]
    fake_bedrock.enqueue(stream_tool_use("get_weather", {"city": "Rome"}, chunk=5,
                                         tool_use_id="ccpx_ZnVuY3Rpb25zLlJlYWQ6MQ"))  # "functions.Read:1"
    with sdk(iv_proxy, key=key).messages.stream(model=INVOKE_MODEL, max_tokens=64, messages=history,
                                                tools=[TOOL]) as stream:
        final = stream.get_final_message()
    assert final.content[-1].id == "functions.Read:1" and final.content[-1].input == {"city": "Rome"}
    sent = fake_bedrock.calls("InvokeModelWithResponseStream")[-1].json()
    sent_id = sent["messages"][1]["content"][0]["id"]
    assert sent_id != FOREIGN_ID and sent["messages"][2]["content"][0]["tool_use_id"] == sent_id
    assert sent["tools"][0]["name"] == "get_weather"


def test_thinking_omitted_keeps_the_signature_only(iv_proxy: RunningProxy, fake_bedrock: FakeBedrock) -> None:
    fake_bedrock.enqueue(converse_reasoning("secret thoughts", signature="c2lnLWJkcms="))
    response = httpx.post(f"{iv_proxy.url}/v1/messages", timeout=30,
                          json={**HELLO, "thinking": {"type": "enabled", "budget_tokens": 1024, "display": "omitted"}},
                          headers={"x-proxy-key": bedrock_key(iv_proxy), "x-api-key": CLIENT_API_KEY})
    thinking = response.json()["content"][0]
    assert thinking == {"type": "thinking", "thinking": "", "signature": "c2lnLWJkcms="}
    assert "display" not in fake_bedrock.calls("InvokeModel")[0].json()["thinking"]


def test_invoke_error_is_mapped_like_converse(iv_proxy: RunningProxy, fake_anthropic: FakeAnthropic,
                                              fake_bedrock: FakeBedrock) -> None:
    key = bedrock_key(iv_proxy)
    fake_bedrock.enqueue(http_error(429, "ThrottlingException", "Too many requests, please wait."))
    response = httpx.post(f"{iv_proxy.url}/v1/messages", json=HELLO, timeout=30,
                          headers={"x-proxy-key": key, "x-api-key": CLIENT_API_KEY})
    assert response.status_code == 429
    assert response.json() == {"type": "error", "error": {"type": "rate_limit_error",
                                                          "message": "Bedrock: Too many requests, please wait."}}

    fake_bedrock.enqueue(http_error(400, "ValidationException", "Prompt is too long"))
    refused = httpx.post(f"{iv_proxy.url}/v1/messages", json=HELLO, timeout=30,
                         headers={"x-proxy-key": key, "x-api-key": CLIENT_API_KEY})
    assert refused.status_code == 400
    assert refused.json()["error"]["message"] == "capability_rejected: prompt_too_long"


def test_exception_mid_invoke_stream_ends_with_error_event_and_usage_is_kept(
        iv_proxy: RunningProxy, fake_bedrock: FakeBedrock) -> None:
    key = iv_proxy.new_key(fallback_policy="bedrock_only")
    fake_bedrock.enqueue(exception_mid_stream(4, "ModelStreamErrorException", "The model stream failed",
                                              reply=stream_text("one two three four five six", chunk=4)))
    events = sse_events(stream_raw(iv_proxy, HELLO, key=key["key"]).content)
    assert events[0][0] == "message_start"
    assert events[-1][0] == "error" and events[-1][1]["error"]["type"] == "api_error"
    totals = iv_proxy.wait_for_usage(lambda t: t["requests"] >= 1, access_key_id=key["id"])
    assert totals["requests"] == 1 and totals["errors"] == 1
    assert totals["input_tokens"] == BEDROCK_USAGE["inputTokens"]  # from message_start


def test_usage_missing_from_native_events_comes_from_invocation_metrics(
        iv_proxy: RunningProxy, fake_bedrock: FakeBedrock) -> None:
    key = iv_proxy.new_key(fallback_policy="bedrock_only")
    fake_bedrock.enqueue(native_stream_reply(
        {"type": "message_start", "message": {"id": "msg_bdrk_x", "type": "message", "role": "assistant",
                                              "model": NATIVE_MODEL, "content": [], "stop_reason": None,
                                              "stop_sequence": None, "usage": {"output_tokens": 1}}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "ok"}},
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
         "usage": {"output_tokens": 7}},
        {"type": "message_stop", METRICS_KEY: {"inputTokenCount": 91, "outputTokenCount": 7,
                                               "cacheReadInputTokenCount": 500, "invocationLatency": 10}}))
    events = sse_events(stream_raw(iv_proxy, HELLO, key=key["key"]).content)
    delta = next(e for name, e in events if name == "message_delta")
    assert delta["usage"] == {"output_tokens": 7, "input_tokens": 91, "cache_read_input_tokens": 500}
    totals = iv_proxy.wait_for_usage(lambda t: t["requests"] >= 1, access_key_id=key["id"])
    assert (totals["input_tokens"], totals["output_tokens"]) == (91, 7)


def test_foreign_signature_is_retried_without_thinking_on_invoke(iv_proxy: RunningProxy,
                                                                 fake_bedrock: FakeBedrock) -> None:
    history = {**HELLO, "max_tokens": 2048, "thinking": {"type": "enabled", "budget_tokens": 1024}, "messages": [
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "earlier thought", "signature": "c2lnbmVkLWJ5LW90aGVy"},
            {"type": "text", "text": "earlier answer"}]},
        {"role": "user", "content": "second"}]}
    fake_bedrock.enqueue(http_error(400, "ValidationException", "The provided `signature` in `thinking` block "
                                    "is invalid"), when=lambda r: is_invoke(r) and b"c2lnbmVkLWJ5LW90aGVy" in r.body)
    response = httpx.post(f"{iv_proxy.url}/v1/messages", json=history, timeout=30,
                          headers={"x-proxy-key": bedrock_key(iv_proxy), "x-api-key": CLIENT_API_KEY})
    assert response.status_code == 200, response.text
    first, retry = fake_bedrock.calls("InvokeModel")
    assert b"c2lnbmVkLWJ5LW90aGVy" in first.body and b"c2lnbmVkLWJ5LW90aGVy" not in retry.body
    assert last_event(iv_proxy)["notes"] == ["invoke_model:configured", "thinking_stripped"]


def test_a_model_not_configured_stays_on_converse(iv_proxy: RunningProxy, fake_bedrock: FakeBedrock) -> None:
    key = bedrock_key(iv_proxy)
    assert sdk(iv_proxy, key=key).messages.create(**{**HELLO, "model": CONVERSE_MODEL}).content[0].text == BEDROCK_TEXT
    with sdk(iv_proxy, key=key).messages.stream(**{**HELLO, "model": CONVERSE_MODEL}) as stream:
        assert stream.get_final_message().content[0].text == BEDROCK_TEXT
    assert [r.operation for r in fake_bedrock.requests] == ["Converse", "ConverseStream"]


def test_tool_search_request_goes_to_invoke_with_its_native_fields(iv_proxy: RunningProxy,
                                                                   fake_bedrock: FakeBedrock) -> None:
    key = bedrock_key(iv_proxy)
    deferred = {**TOOL, "name": "mcp__db__query", "defer_loading": True}
    history = [{"role": "user", "content": "find the db tool"},
               {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_01search", "name": "ToolSearch",
                                                  "input": {"query": "db"}}]},
               {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01search", "content": [
                   {"type": "tool_reference", "tool_name": "mcp__db__query"}]}]}]
    fake_bedrock.enqueue(converse_tool_use("mcp__db__query", {"sql": "select 1"}))
    answer = sdk(iv_proxy, key=key).messages.create(
        model=CONVERSE_MODEL, max_tokens=64, messages=history, tools=[TOOL, deferred, TOOL_SEARCH],
        extra_headers={"anthropic-beta": "advanced-tool-use-2025-11-20"})
    assert answer.content[-1].name == "mcp__db__query"
    (call,) = fake_bedrock.requests
    assert call.operation == "InvokeModel"
    body = call.json()
    assert body["anthropic_beta"] == ["tool-search-tool-2025-10-19"]
    assert [t.get("type") for t in body["tools"]] == [None, None, TOOL_SEARCH["type"]]
    assert body["tools"][1]["defer_loading"] is True
    assert body["messages"][2]["content"][0]["content"] == [{"type": "tool_reference", "tool_name": "mcp__db__query"}]
    assert last_event(iv_proxy)["notes"] == ["invoke_model:tool_search"]


def test_tool_search_stays_on_converse_by_default(fake_anthropic: FakeAnthropic, fake_bedrock: FakeBedrock) -> None:
    settings = make_settings(fake_anthropic.url, bedrock_endpoint_url=fake_bedrock.url,
                             default_fallback_policy="bedrock_only")
    for running in start_proxy(settings):
        deferred = {**TOOL, "name": "mcp__db__query", "defer_loading": True}
        answer = sdk(running).messages.create(model=CONVERSE_MODEL, max_tokens=64, tools=[TOOL, deferred],
                                              messages=[{"role": "user", "content": "hi"}])
        assert answer.content[0].text == BEDROCK_TEXT
        assert [r.operation for r in fake_bedrock.requests] == ["Converse"]


def test_claude_code_request_with_deferred_tools_goes_to_invoke_intact(fake_anthropic: FakeAnthropic,
                                                                       fake_bedrock: FakeBedrock) -> None:
    body = json.loads(CLAUDE_CODE_REQUEST.read_text())  # ToolSearch + a defer_loading placeholder tool
    settings = make_settings(fake_anthropic.url, bedrock_endpoint_url=fake_bedrock.url,
                             default_fallback_policy="bedrock_only", bedrock_invoke_when_needed_models=["*"])
    for running in start_proxy(settings):
        fake_bedrock.enqueue(stream_reasoning("thinking", then_text="going on"))
        response = stream_raw(running, body, key=running.key)
        assert response.status_code == 200, response.text
        assert sse_events(response.content)[-1][0] == "message_stop"
        (call,) = fake_bedrock.calls("InvokeModelWithResponseStream")
        sent = call.json()
        assert "tool-search-tool-2025-10-19" in sent["anthropic_beta"]
        assert [t["name"] for t in sent["tools"]] == [t["name"] for t in body["tools"]]
        assert next(t for t in sent["tools"] if t["name"] == "DeferredToolPlaceholder")["defer_loading"] is True
        assert json.dumps(sent).count('"cache_control"') == json.dumps(body).count('"cache_control"')
        assert "context_management" not in sent and "metadata" not in sent


def test_pings_while_invoke_stream_is_silent(fake_anthropic: FakeAnthropic, fake_bedrock: FakeBedrock) -> None:
    settings = make_settings(fake_anthropic.url, bedrock_endpoint_url=fake_bedrock.url,
                             default_fallback_policy="bedrock_only", bedrock_ping_interval_s=0.05,
                             bedrock_invoke_models=["*"])
    for running in start_proxy(settings):
        # message_start, then twelve ping intervals of silence before the first block.
        fake_bedrock.enqueue(stream_text("after the pause", chunk=64, delays_s=(0.0, 0.6)))
        names = [name for name, _ in sse_events(stream_raw(running, HELLO, key=running.key).content)]
        assert "ping" in names[:names.index("content_block_start")], names
        assert names[-1] == "message_stop"
        assert [r.operation for r in fake_bedrock.requests] == ["InvokeModelWithResponseStream"]
