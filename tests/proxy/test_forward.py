"""Forwarder routing decisions (app/proxy/forward.py), in process and without sockets.

Small fakes of the two upstreams: the real ``AnthropicUpstream`` over an ``httpx.MockTransport``
that answers from a list, and a fake Bedrock branch with ``serve(preq, outcome)``. A recorder
collects the usage events, so each test can check that a request was recorded exactly once.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx
import pytest
from starlette.datastructures import Headers
from starlette.responses import Response

from app.auth.access import Principal
from app.errors import ProxyError, RateLimited, UpstreamUnavailable
from app.proxy.anthropic import AnthropicUpstream
from app.proxy.cooldowns import CooldownTracker
from app.proxy.forward import FallbackOptions, Forwarder
from app.proxy.outcome import Outcome
from app.proxy.relay import Relay
from app.proxy.request import ProxyRequest
from app.proxy.responses import raw_response
from app.records.events import UsageEvent
from tests.support.constants import CLIENT_API_KEY, MODEL

USAGE = {"input_tokens": 11, "output_tokens": 7, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
MESSAGE = {"id": "msg_1", "type": "message", "role": "assistant", "model": MODEL, "content": [],
           "stop_reason": "end_turn", "stop_sequence": None, "usage": USAGE}
SIGNATURE_REJECTED = {"type": "error", "error": {"type": "invalid_request_error",
                                                 "message": "messages.1.content.0: Invalid `signature` in `thinking` block"}}
REPLAYED_THINKING = [{"role": "user", "content": "hi"},
                     {"role": "assistant", "content": [{"type": "thinking", "thinking": "t", "signature": "bedrock-sig"},
                                                       {"type": "text", "text": "hello"}]},
                     {"role": "user", "content": "again"}]

Answer = httpx.Response | Exception


class FakeAnthropicTransport:
    """Answers each request with the next scripted answer (an httpx.Response, or an exception to raise)."""

    def __init__(self, *answers: Answer) -> None:
        self.answers, self.bodies = list(answers), []  # type: list[Answer], list[Any]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.bodies.append(json.loads(request.content))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


class FakeBedrock:
    """``serve(preq, outcome)``: a 200 JSON answer with Bedrock's usage, or ``error`` raised."""

    def __init__(self, error: ProxyError | None = None) -> None:
        self.error, self.calls = error, []  # type: ProxyError | None, list[str | None]

    async def serve(self, preq: ProxyRequest, outcome: Outcome) -> Response:
        self.calls.append(outcome.fallback_reason)
        outcome.provider_model = "us.anthropic.fake-v1:0"
        if self.error is not None:
            raise self.error
        outcome.status, outcome.usage = 200, {"input_tokens": 3, "output_tokens": 2}
        return raw_response(b'{"served_by":"bedrock"}', 200, [("content-type", "application/json")])


class Recorder:
    def __init__(self) -> None:
        self.events: list[UsageEvent] = []

    def record(self, event: UsageEvent) -> None:
        self.events.append(event)


class MemoryCooldowns:
    """The cooldown repository's two calls, in memory."""

    def __init__(self) -> None:
        self.docs: dict[str, dict[str, Any]] = {}

    async def get(self, fingerprint: str) -> dict[str, Any] | None:
        return self.docs.get(fingerprint)

    async def start(self, fingerprint: str, until: datetime, reason: str) -> None:
        self.docs[fingerprint] = {"until": until, "reason": reason}


def reply(status: int, body: Any, **headers: str) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


def sse(*events: tuple[str, dict[str, Any]]) -> httpx.Response:
    body = b"".join(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode() for name, data in events)
    return httpx.Response(200, stream=httpx.ByteStream(body), headers={"content-type": "text/event-stream"})


def request(*, policy: str | None = None, stream: bool = False, messages: list[Any] | None = None) -> ProxyRequest:
    params = {"model": MODEL, "max_tokens": 10, "messages": messages or [{"role": "user", "content": "hi"}]}
    if stream:
        params["stream"] = True
    body = json.dumps(params).encode()
    raw = [("x-api-key", CLIENT_API_KEY), ("content-type", "application/json")]
    return ProxyRequest(endpoint="messages", path="/v1/messages", query="", raw_headers=raw, headers=Headers(dict(raw)),
                        body=body, params=params, client_ip="127.0.0.1",
                        principal=Principal(access_key_id="key_1", user_id="user_1", key_prefix="sk-ccp-abc",
                                            fallback_policy=policy))


@pytest.fixture
def make() -> Callable[..., tuple[Forwarder, FakeAnthropicTransport, Recorder, MemoryCooldowns]]:
    def build(*answers: Answer, bedrock: FakeBedrock | None = None,
              **options: Any) -> tuple[Forwarder, FakeAnthropicTransport, Recorder, MemoryCooldowns]:
        transport, recorder, cooldowns = FakeAnthropicTransport(*answers), Recorder(), MemoryCooldowns()
        upstream = AnthropicUpstream("https://api.anthropic.test", connect_timeout_s=1, read_timeout_s=1,
                                     transport=httpx.MockTransport(transport))
        forwarder = Forwarder(upstream, recorder, secret_key=b"k" * 32, bedrock=bedrock,  # type: ignore[arg-type]
                              cooldowns=CooldownTracker(cooldowns, cache_ttl_s=0),  # type: ignore[arg-type]
                              options=FallbackOptions(**options))
        return forwarder, transport, recorder, cooldowns
    return build


async def test_a_200_is_returned_as_anthropic_sent_it_and_recorded_once(make: Any) -> None:
    forwarder, transport, recorder, _ = make(reply(200, MESSAGE, **{"request-id": "req_1"}), bedrock=FakeBedrock())
    response = await forwarder.handle(request())
    assert response.status_code == 200 and json.loads(response.body) == MESSAGE
    [event] = recorder.events
    assert (event.provider, event.status, event.input_tokens, event.output_tokens, event.request_id) == (
        "anthropic", 200, 11, 7, "req_1")


async def test_a_429_falls_back_to_bedrock_and_starts_a_cooldown(make: Any) -> None:
    bedrock = FakeBedrock()
    forwarder, _, recorder, cooldowns = make(reply(429, {"type": "error"}, **{"retry-after": "30"}), bedrock=bedrock)
    response = await forwarder.handle(request())
    assert json.loads(response.body) == {"served_by": "bedrock"} and bedrock.calls == ["rate_limited"]
    assert [doc["reason"] for doc in cooldowns.docs.values()] == ["rate_limited"]
    [event] = recorder.events
    assert (event.provider, event.status, event.fallback_reason, event.provider_model) == (
        "bedrock", 200, "rate_limited", "us.anthropic.fake-v1:0")


async def test_a_running_cooldown_goes_straight_to_bedrock(make: Any) -> None:
    bedrock = FakeBedrock()
    forwarder, transport, recorder, _ = make(reply(429, {"type": "error"}, **{"retry-after": "30"}), bedrock=bedrock)
    await forwarder.handle(request())
    await forwarder.handle(request())  # no second Anthropic answer is scripted: it must not be asked
    assert len(transport.bodies) == 1 and bedrock.calls == ["rate_limited", "cooldown:rate_limited"]
    assert [e.fallback_reason for e in recorder.events] == ["rate_limited", "cooldown:rate_limited"]


async def test_when_bedrock_fails_too_the_client_gets_anthropics_original_answer(make: Any) -> None:
    bedrock = FakeBedrock(error=UpstreamUnavailable("bedrock down"))
    forwarder, _, recorder, _ = make(reply(529, {"type": "error", "error": {"type": "overloaded_error"}}),
                                     bedrock=bedrock)
    response = await forwarder.handle(request())
    assert response.status_code == 529 and json.loads(response.body)["error"]["type"] == "overloaded_error"
    [event] = recorder.events  # once: Bedrock's failure, not a second event for Anthropic's answer
    assert (event.provider, event.status, event.fallback_reason) == ("bedrock", 502, "overloaded")


async def test_a_connect_error_with_bedrock_failing_raises_anthropics_error_recorded_once(make: Any) -> None:
    bedrock = FakeBedrock(error=RateLimited("bedrock throttled"))
    forwarder, _, recorder, _ = make(httpx.ConnectError("refused"), bedrock=bedrock)
    with pytest.raises(UpstreamUnavailable):
        await forwarder.handle(request())
    [event] = recorder.events
    assert (event.provider, event.status, event.fallback_reason) == ("bedrock", 429, "connect_error")


async def test_anthropic_only_passes_a_529_through_without_bedrock(make: Any) -> None:
    bedrock = FakeBedrock()
    forwarder, _, recorder, _ = make(reply(529, {"type": "error"}), bedrock=bedrock, default_policy="anthropic_only")
    response = await forwarder.handle(request())
    assert response.status_code == 529 and bedrock.calls == []
    assert [(e.provider, e.status) for e in recorder.events] == [("anthropic", 529)]


async def test_bedrock_only_never_asks_anthropic(make: Any) -> None:
    bedrock = FakeBedrock()
    forwarder, transport, recorder, _ = make(bedrock=bedrock)
    await forwarder.handle(request(policy="bedrock_only"))
    assert transport.bodies == [] and bedrock.calls == ["bedrock_only"]
    assert [e.provider for e in recorder.events] == ["bedrock"]


async def test_a_400_for_a_replayed_thinking_signature_is_retried_once_without_it(make: Any) -> None:
    forwarder, transport, recorder, _ = make(reply(400, SIGNATURE_REJECTED), reply(200, MESSAGE))
    response = await forwarder.handle(request(messages=REPLAYED_THINKING))
    assert response.status_code == 200 and len(transport.bodies) == 2
    assert [b["type"] for b in transport.bodies[1]["messages"][1]["content"]] == ["text"]
    [event] = recorder.events
    assert event.notes == ["thinking_stripped"] and event.status == 200


async def test_another_400_with_replayed_thinking_is_passed_through(make: Any) -> None:
    other = {"type": "error", "error": {"type": "invalid_request_error", "message": "max_tokens: too large"}}
    forwarder, transport, recorder, _ = make(reply(400, other))
    response = await forwarder.handle(request(messages=REPLAYED_THINKING))
    assert response.status_code == 400 and json.loads(response.body) == other and len(transport.bodies) == 1
    assert [(e.status, e.notes) for e in recorder.events] == [(400, [])]


async def test_a_stream_is_recorded_once_by_the_relay_with_time_to_first_token(make: Any) -> None:
    start = {"type": "message_start", "message": {**MESSAGE, "usage": {"input_tokens": 5, "output_tokens": 1}}}
    delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "hi"}}
    end = {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 9}}
    forwarder, _, recorder, _ = make(sse(("message_start", start), ("ping", {"type": "ping"}),
                                         ("content_block_delta", delta), ("message_delta", end),
                                         ("message_stop", {"type": "message_stop"})))
    response = await forwarder.handle(request(stream=True))
    assert isinstance(response, Relay) and recorder.events == []  # the relay owns the record now
    body = b"".join([chunk async for chunk in response.body_iterator])  # type: ignore[misc]
    assert b"message_stop" in body
    [event] = recorder.events
    assert (event.streamed, event.status, event.input_tokens, event.output_tokens) == (True, 200, 5, 9)
    assert event.ttft_ms is not None and event.ttft_ms <= event.latency_ms


async def test_a_refused_admission_is_recorded_once_and_nothing_is_asked(make: Any) -> None:
    class Refuse:
        async def check(self, preq: ProxyRequest) -> None:
            raise RateLimited("quota")

    forwarder, transport, recorder, _ = make(bedrock=FakeBedrock())
    forwarder._admission = Refuse()
    with pytest.raises(RateLimited):
        await forwarder.handle(request())
    assert transport.bodies == [] and [(e.provider, e.status) for e in recorder.events] == [("anthropic", 429)]
