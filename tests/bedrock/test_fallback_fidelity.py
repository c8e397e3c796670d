"""Bedrock fidelity seen by a client: the official ``anthropic`` SDK (and raw httpx where the bytes
matter) -> the real proxy -> the fake Bedrock (real event-stream framing, real aioboto3 client).

Covers Claude Code's real request body with its conversation-tail breakpoint on a mid-conversation
system message, a forced web search answered as "unavailable" without calling Bedrock,
``thinking.display: "omitted"``, tool-use ids Bedrock's pattern rejects, adaptive-only models and
the message of a refused proxy AWS identity."""

from __future__ import annotations

import asyncio
import copy
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest

from app.bedrock.server_tools import NOTE as SERVER_TOOL_NOTE
from app.bedrock.tool_ids import TOOL_USE_ID, to_bedrock_id
from app.store.usage import EVENTS
from tests.conftest import CLIENT_API_KEY, RunningProxy, make_settings, start_proxy
from tests.fakes.anthropic_server import running_fake_anthropic
from tests.fakes.bedrock_server import (FakeBedrock, converse_reasoning, converse_tool_use, http_error,
                                        running_fake_bedrock, stream_reasoning)
from tests.support.constants import MODEL

FIXTURE = Path(__file__).parents[1] / "fixtures" / "claude_code_request.json"
EPHEMERAL = {"type": "ephemeral"}


@pytest.fixture(scope="module")
def module_bedrock() -> Iterator[FakeBedrock]:
    with running_fake_bedrock() as fake:
        yield fake


@pytest.fixture
def fake_bedrock(module_bedrock: FakeBedrock) -> FakeBedrock:
    module_bedrock.reset()
    return module_bedrock


@pytest.fixture(scope="module")
def proxy_key(module_bedrock: FakeBedrock) -> Iterator[tuple[RunningProxy, str]]:
    """One proxy for the module (starting one per test costs seconds) in front of both fakes, and an
    access key whose policy is ``bedrock_only``: Anthropic is never asked."""
    with running_fake_anthropic() as fake_anthropic:
        for running in start_proxy(make_settings(fake_anthropic.url, bedrock_endpoint_url=module_bedrock.url,
                                                 default_fallback_policy="anthropic_first", bedrock_read_timeout_s=10.0)):
            yield running, running.new_key(fallback_policy="bedrock_only")["key"]


def sdk(proxy_key: tuple[RunningProxy, str]) -> anthropic.Anthropic:
    proxy, key = proxy_key
    return anthropic.Anthropic(api_key=CLIENT_API_KEY, base_url=proxy.url, max_retries=0,
                               default_headers={"x-proxy-key": key})


def stream_raw(proxy_key: tuple[RunningProxy, str], body: dict[str, Any]) -> httpx.Response:
    proxy, key = proxy_key
    with httpx.stream("POST", f"{proxy.url}/v1/messages", json={**body, "stream": True}, timeout=30,
                      headers={"x-proxy-key": key, "x-api-key": CLIENT_API_KEY}) as response:
        response.read()
    return response


def sse_events(body: bytes) -> list[dict[str, Any]]:
    return [json.loads(line[len(b"data: "):]) for line in body.split(b"\n") if line.startswith(b"data: ")]


def claude_code_tail_on_system_message() -> dict[str, Any]:
    """Claude Code's recorded request, with the turn ending in a ``role: system`` message that
    carries the conversation-tail breakpoint (moved there from the tool_result, as Claude Code does
    when a system message closes the turn)."""
    body = json.loads(FIXTURE.read_text())
    body = copy.deepcopy(body)
    for message in body["messages"]:
        for block in message["content"] if isinstance(message["content"], list) else []:
            block.pop("cache_control", None)
    body["messages"].append({"role": "system", "content": [
        {"type": "text", "text": "The user sent a new message while you were working: keep going."},
        {"type": "text", "text": "Todo list is empty.", "cache_control": EPHEMERAL}]})
    return body


def breakpoints(body: dict[str, Any]) -> int:
    return json.dumps(body).count('"cache_control"')


def cache_points(converse: dict[str, Any]) -> int:
    return json.dumps(converse).count('"cachePoint"')


def test_claude_code_tail_breakpoint_on_a_system_message_reaches_bedrock(
        proxy_key: tuple[RunningProxy, str], fake_bedrock: FakeBedrock) -> None:
    body = claude_code_tail_on_system_message()
    assert breakpoints(body) == 3  # two in system, the tail one on the system message
    fake_bedrock.enqueue(stream_reasoning("thinking", then_text="going on"))
    response = stream_raw(proxy_key, body)
    assert response.status_code == 200, response.text
    (call,) = fake_bedrock.calls("ConverseStream")
    sent = call.json()
    assert cache_points(sent) == 3
    last_turn = sent["messages"][-1]
    assert last_turn["role"] == "user"
    *_, reminder, tail = last_turn["content"]
    assert tail == {"cachePoint": {"type": "default"}}
    assert reminder["text"].endswith("Todo list is empty.\n</system-reminder>")
    assert "toolResult" in last_turn["content"][0]  # merged into the turn that holds the tool result


def test_claude_code_recorded_body_keeps_all_its_breakpoints(proxy_key: tuple[RunningProxy, str],
                                                              fake_bedrock: FakeBedrock) -> None:
    body = json.loads(FIXTURE.read_text())
    fake_bedrock.enqueue(stream_reasoning("thinking", then_text="ok"))
    assert stream_raw(proxy_key, body).status_code == 200
    (call,) = fake_bedrock.calls("ConverseStream")
    assert cache_points(call.json()) == breakpoints(body) == 3


def test_claude_code_thinking_display_omitted_streams_signature_without_text(
        proxy_key: tuple[RunningProxy, str], fake_bedrock: FakeBedrock) -> None:
    body = json.loads(FIXTURE.read_text())
    assert body["thinking"]["display"] == "omitted"
    fake_bedrock.enqueue(stream_reasoning("the private chain of thought", signature="c2lnbmF0dXJl", then_text="done"))
    response = stream_raw(proxy_key, body)
    events = sse_events(response.content)
    deltas = [e["delta"]["type"] for e in events if e["type"] == "content_block_delta"]
    assert "thinking_delta" not in deltas and "signature_delta" in deltas
    assert b"private chain" not in response.content
    sent_thinking = fake_bedrock.calls("ConverseStream")[0].json()["additionalModelRequestFields"]["thinking"]
    assert sent_thinking == {"type": "adaptive"}  # display is applied by the proxy, not sent


def test_thinking_display_omitted_through_the_sdk(proxy_key: tuple[RunningProxy, str],
                                                  fake_bedrock: FakeBedrock) -> None:
    fake_bedrock.enqueue(converse_reasoning("secret reasoning", signature="c2lnbmF0dXJl", then_text="4"))
    request = {"model": MODEL, "max_tokens": 4096, "messages": [{"role": "user", "content": "2+2?"}],
               "thinking": {"type": "adaptive", "display": "omitted"}}
    message = sdk(proxy_key).messages.create(**request)
    assert [(b.type, getattr(b, "thinking", None)) for b in message.content] == [("thinking", ""), ("text", None)]
    assert message.content[0].signature == "c2lnbmF0dXJl"
    fake_bedrock.enqueue(stream_reasoning("secret reasoning", signature="c2lnbmF0dXJl", then_text="4"))
    with sdk(proxy_key).messages.stream(**request) as stream:
        final = stream.get_final_message()
    assert final.content[0].thinking == "" and final.content[0].signature == "c2lnbmF0dXJl"


WEB_SEARCH_REQUEST = {  # what Claude Code's WebSearch tool sends (it streams, with max_tokens 32000)
    "model": MODEL, "max_tokens": 1024,
    "system": [{"type": "text", "text": "You are an assistant for performing a web search tool use"}],
    "messages": [{"role": "user", "content": "Perform a web search for the query: bedrock converse cachePoint"}],
    "tools": [{"type": "web_search_20250305", "name": "web_search", "max_uses": 8}],
    "tool_choice": {"type": "tool", "name": "web_search"},
}


@pytest.mark.parametrize("streamed", [True, False], ids=["stream", "json"])
def test_forced_web_search_is_answered_unavailable_without_calling_bedrock(
        proxy_key: tuple[RunningProxy, str], fake_bedrock: FakeBedrock, streamed: bool) -> None:
    client = sdk(proxy_key)
    seen = len(_noted_events(proxy_key[0]))
    if streamed:
        with client.messages.stream(**WEB_SEARCH_REQUEST) as stream:
            message = stream.get_final_message()
    else:
        message = client.messages.create(**WEB_SEARCH_REQUEST)
    assert [b.type for b in message.content] == ["server_tool_use", "web_search_tool_result", "text"]
    assert message.content[1].content.type == "web_search_tool_result_error"
    assert message.content[1].content.error_code == "unavailable"
    assert message.content[1].tool_use_id == message.content[0].id
    assert message.model == MODEL and message.stop_reason == "end_turn"
    assert not fake_bedrock.requests
    event = _next_noted_event(proxy_key[0], seen)
    assert event["status"] == 200 and event["provider"] == "bedrock" and SERVER_TOOL_NOTE in event["notes"]


def test_forced_server_tool_without_an_unavailable_answer_is_a_400_naming_it(
        proxy_key: tuple[RunningProxy, str], fake_bedrock: FakeBedrock) -> None:
    request = {**WEB_SEARCH_REQUEST, "tools": [{"type": "code_execution_20250825", "name": "code_execution"}],
               "tool_choice": {"type": "tool", "name": "code_execution"}}
    with pytest.raises(anthropic.BadRequestError) as info:
        sdk(proxy_key).messages.create(**request)
    assert "'code_execution'" in info.value.message and "Bedrock cannot run" in info.value.message
    assert not fake_bedrock.requests


def test_tool_use_ids_bedrock_rejects_are_mapped_and_come_back(proxy_key: tuple[RunningProxy, str],
                                                               fake_bedrock: FakeBedrock) -> None:
    foreign = "functions.Read:0"  # an id minted by another provider earlier in the session
    fake_bedrock.enqueue(converse_tool_use("Read", {"path": "b"}, tool_use_id=to_bedrock_id("call.1")))
    message = sdk(proxy_key).messages.create(
        model=MODEL, max_tokens=100, tools=[{"name": "Read", "input_schema": {"type": "object"}}],
        messages=[{"role": "user", "content": "read a"},
                  {"role": "assistant", "content": [{"type": "tool_use", "id": foreign, "name": "Read", "input": {"path": "a"}}]},
                  {"role": "user", "content": [{"type": "tool_result", "tool_use_id": foreign, "content": "A"}]}])
    sent = fake_bedrock.calls("Converse")[0].json()["messages"]
    ids = [b[k]["toolUseId"] for m in sent for b in m["content"] for k in ("toolUse", "toolResult") if k in b]
    assert len(ids) == 2 and ids[0] == ids[1] and TOOL_USE_ID.fullmatch(ids[0])
    assert message.content[0].id == "call.1"  # decoded back to the form the client would have sent


def test_enabled_thinking_becomes_adaptive_on_opus_4_7(proxy_key: tuple[RunningProxy, str],
                                                        fake_bedrock: FakeBedrock) -> None:
    sdk(proxy_key).messages.create(model="claude-opus-4-7", max_tokens=4096,
                                   thinking={"type": "enabled", "budget_tokens": 2048},
                                   messages=[{"role": "user", "content": "hi"}])
    (call,) = fake_bedrock.calls("Converse")
    assert call.json()["additionalModelRequestFields"]["thinking"] == {"type": "adaptive"}


def test_refused_proxy_aws_identity_says_it_is_the_proxys_access(proxy_key: tuple[RunningProxy, str],
                                                                 fake_bedrock: FakeBedrock) -> None:
    fake_bedrock.enqueue(http_error(403, "AccessDeniedException", "User: arn:aws:sts::1:assumed-role/proxy is not "
                                    "authorized to perform: bedrock:InvokeModel"))
    with pytest.raises(anthropic.PermissionDeniedError) as info:
        sdk(proxy_key).messages.create(model=MODEL, max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    message = info.value.message
    assert "not authorized to perform: bedrock:InvokeModel" in message
    assert "proxy's own AWS access" in message and "Anthropic API key is not involved" in message


def _noted_events(proxy: RunningProxy) -> list[dict[str, Any]]:
    """Stored usage events carrying SERVER_TOOL_NOTE, newest first."""

    async def find() -> list[dict[str, Any]]:
        return await proxy.services.store.db[EVENTS].find({"notes": SERVER_TOOL_NOTE}).sort("time", -1).to_list(100)

    return asyncio.run(find())


def _next_noted_event(proxy: RunningProxy, seen: int, timeout_s: float = 10.0) -> dict[str, Any]:
    """The newest noted event once there are more than ``seen`` (the recorder flushes in the background)."""
    deadline = time.monotonic() + timeout_s
    while len(events := _noted_events(proxy)) <= seen and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(events) == seen + 1, "exactly one usage event for the answered request"
    return events[0]
