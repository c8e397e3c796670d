"""Faults that must end cleanly, through the real app on a loopback socket: the proxy's own
connection pool full, upstream answers that are not what the APIs promise (SSE data that is not an
object, corrupt Bedrock event-stream frames, malformed Converse JSON, a ``retry-after`` that is not
a number), bodies nested 100k deep, and streams still open when the shutdown grace period ends.

Each: what the client gets (never a 500 with a traceback, never a reset), what is recorded (one
usage event, with the right status; never a false 499), and the metric the operator sees."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from typing import Any

import httpx
import pytest
import uvicorn

from app.main import create_app
from app.proxy.drain import DrainingServer
from app.store.usage import EVENTS
from tests.conftest import CLIENT_API_KEY, RunningProxy, admin_client, make_settings, start_proxy
from tests.fakes.anthropic_server import (FakeAnthropic, overloaded_reply, rate_limit_reply, sse_frame, sse_reply,
                                          text_reply)
from tests.fakes.bedrock_server import FakeBedrock, Reply, corrupt_mid_stream, stream_text
from tests.support.constants import MODEL
from tests.support.sse import sse_events

HELLO = {"model": MODEL, "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}


def headers(key: str) -> dict[str, str]:
    return {"x-proxy-key": key, "x-api-key": CLIENT_API_KEY, "content-type": "application/json"}


def post(proxy: RunningProxy, body: dict[str, Any] | bytes) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return proxy.http.post("/v1/messages", content=content, headers=headers(proxy.key), timeout=30)


def stream_raw(proxy: RunningProxy, body: dict[str, Any]) -> httpx.Response:
    with proxy.http.stream("POST", "/v1/messages", json={**body, "stream": True}, timeout=30,
                      headers=headers(proxy.key)) as response:
        response.read()
    return response



def stored_events(app: Any, count: int, timeout_s: float = 10.0) -> list[dict[str, Any]]:
    """Every stored usage event, oldest first, once there are ``count`` (then a few more flush
    intervals, so an extra event would show up too)."""
    collection = app.state.services.store.db[EVENTS]

    async def read() -> list[dict[str, Any]]:
        return await collection.find({}).sort("time", 1).to_list(None)

    deadline = time.monotonic() + timeout_s
    while len(asyncio.run(read())) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)  # 4 flush intervals: room for an unexpected second event
    return asyncio.run(read())


def metric(app: Any, name: str, **labels: str) -> float | None:
    return app.state.services.metrics.registry.get_sample_value(name, labels)


# --- the proxy's own connection pool to Anthropic is full --------------------------------------

class Held:
    """A stream Anthropic keeps open (30 s between events), its first event read: the proxy's only
    upstream connection is taken until ``close()``. Keeps its iterator referenced: a collected
    iterator would close the connection early."""

    def __init__(self, proxy: RunningProxy, fake_anthropic: FakeAnthropic) -> None:
        fake_anthropic.enqueue(text_reply("held", chunk_delay_s=30))
        self.client = httpx.Client(timeout=30)
        request = self.client.build_request("POST", f"{proxy.url}/v1/messages", json={**HELLO, "stream": True},
                                            headers=headers(proxy.key))
        self.response = self.client.send(request, stream=True)
        self.chunks = self.response.iter_raw()
        assert b"message_start" in next(self.chunks)
        # On a socket (start_proxy without in_process): close() is a client leaving mid-stream.

    def close(self) -> None:
        self.response.close()
        self.client.close()


def test_a_full_local_pool_falls_back_without_cooldown_or_circuit(fake_anthropic: FakeAnthropic,
                                                                  fake_bedrock: FakeBedrock) -> None:
    # circuit_failure_threshold=1: if the full pool counted as Anthropic's failure, one would open it.
    settings = make_settings(fake_anthropic.url, bedrock_endpoint_url=fake_bedrock.url,
                             default_fallback_policy="anthropic_first", max_upstream_connections=1,
                             upstream_pool_timeout_s=0.2, circuit_failure_threshold=1)
    for running in start_proxy(settings):
        held = Held(running, fake_anthropic)
        try:
            served = post(running, HELLO)
        finally:
            held.close()
        assert served.status_code == 200, served.text
        assert served.headers["x-proxy-provider"] == "bedrock"
        assert served.headers["x-proxy-fallback-reason"] == "local_pool_exhausted"
        assert len(fake_anthropic.messages_requests()) == 1  # the second request never reached it

        after = post(running, HELLO)  # no cooldown, no open circuit: straight back to Anthropic
        assert after.headers["x-proxy-provider"] == "anthropic"

        events = stored_events(running.app, 3)
        fallback = [e for e in events if e["provider"] == "bedrock"]
        assert len(events) == 3 and len(fallback) == 1
        assert fallback[0]["fallback_reason"] == "local_pool_exhausted"
        assert "local_pool_exhausted" in fallback[0]["notes"]
        assert metric(running.app, "claude_proxy_upstream_pool_exhausted_total", upstream="anthropic") == 1
        scraped = running.http.get("/metrics").text
        assert "claude_proxy_bedrock_max_connections 1000.0" in scraped
        assert "claude_proxy_bedrock_connection_waiters 0.0" in scraped


def test_a_full_local_pool_without_fallback_is_503_overloaded(fake_anthropic: FakeAnthropic) -> None:
    settings = make_settings(fake_anthropic.url, max_upstream_connections=1, upstream_pool_timeout_s=0.2)
    for running in start_proxy(settings):  # the tests' default policy: anthropic_only
        held = Held(running, fake_anthropic)
        try:
            refused = post(running, HELLO)
        finally:
            held.close()
        assert refused.status_code == 503
        assert refused.json()["error"]["type"] == "overloaded_error"
        assert "PROXY_MAX_UPSTREAM_CONNECTIONS" in refused.json()["error"]["message"]
        assert refused.headers["retry-after"] == "1"
        events = stored_events(running.app, 2)
        assert sorted(e["status"] for e in events) == [499, 503]  # the held stream left by its client
        assert [e["notes"] for e in events if e["status"] == 503] == [["local_pool_exhausted"]]


# --- bad upstream answers ---------------------------------------------------------------------

MESSAGE_START = sse_frame({"type": "message_start", "message": {
    "id": "msg_1", "type": "message", "role": "assistant", "model": MODEL, "content": [], "stop_reason": None,
    "stop_sequence": None, "usage": {"input_tokens": 7, "output_tokens": 1}}})


@pytest.mark.parametrize("data", [b"[1,2]", b'"a string"', b"not json", b"null", b"[" * 5000 + b"]" * 5000])
def test_sse_data_that_is_not_an_object_ends_the_stream_with_an_error(proxy: RunningProxy, fake_anthropic: FakeAnthropic,
                                                                      data: bytes) -> None:
    delta = sse_frame({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}})
    fake_anthropic.enqueue(sse_reply(MESSAGE_START, delta, b"event: message_delta\ndata: " + data + b"\n\n"))
    response = stream_raw(proxy, HELLO)
    assert response.status_code == 200
    events = sse_events(response.content)
    assert [name for name, _ in events] == ["message_start", "content_block_delta", "error"]
    assert events[-1][1]["error"]["type"] == "api_error"
    (event,) = stored_events(proxy.app, 1)
    assert (event["status"], event["input_tokens"]) == (502, 7)


def test_a_first_event_that_is_not_an_object_is_not_relayed(proxy: RunningProxy, fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.enqueue(sse_reply(b"event: message_start\ndata: [1,2]\n\n"))
    events = sse_events(stream_raw(proxy, HELLO).content)
    assert [name for name, _ in events] == ["error"]
    assert stored_events(proxy.app, 1)[0]["status"] == 502


@pytest.mark.parametrize("after_events", [2, 5])
@pytest.mark.parametrize("kind", ["crc", "garbage"])
def test_a_corrupt_bedrock_frame_mid_stream_is_an_sse_error(fb_proxy: RunningProxy, fake_anthropic: FakeAnthropic,
                                                            fake_bedrock: FakeBedrock, kind: str,
                                                            after_events: int) -> None:
    fake_anthropic.enqueue(overloaded_reply())
    fake_bedrock.enqueue(corrupt_mid_stream(after_events, kind, stream_text("a longer answer", chunk=2)))
    response = stream_raw(fb_proxy, HELLO)
    assert response.status_code == 200 and response.headers["x-proxy-provider"] == "bedrock"
    events = sse_events(response.content)
    assert events[0][0] == "message_start" and events[-1][0] == "error"
    assert events[-1][1]["error"] == {"type": "api_error", "message": "Bedrock: malformed response (ChecksumMismatch)"}
    (event,) = stored_events(fb_proxy.app, 1)
    assert (event["provider"], event["status"]) == ("bedrock", 502)


@pytest.mark.parametrize(("stream", "bedrock_reply"), [
    # Event-stream frames for the streamed call (ConverseStream), Converse JSON bodies for the other.
    (True, corrupt_mid_stream(0, "crc")),
    (True, corrupt_mid_stream(0, "garbage")),
    (False, Reply(json_body={"output": "text", "stopReason": "end_turn"})),             # botocore's parser fails
    (False, Reply(json_body={"output": {"message": {"content": [{"toolUse": {}}]}}, "stopReason": "tool_use",
                             "usage": {"inputTokens": 1, "outputTokens": 1}})),       # ours refuses it
    (False, Reply(json_body={"output": {"message": {"content": [{"text": "hi"}]}}, "stopReason": "end_turn",
                             "usage": {"inputTokens": "many"}})),
], ids=["crc", "garbage", "output-not-object", "tool-use-without-id", "usage-not-int"])
def test_a_malformed_bedrock_answer_before_the_first_byte_returns_anthropics_answer(
        fb_proxy: RunningProxy, fake_anthropic: FakeAnthropic, fake_bedrock: FakeBedrock,
        bedrock_reply: Reply, stream: bool) -> None:
    fake_anthropic.enqueue(rate_limit_reply(retry_after_s=30))
    fake_bedrock.enqueue(bedrock_reply)
    response = stream_raw(fb_proxy, HELLO) if stream else post(fb_proxy, HELLO)
    assert response.status_code == 429, response.text  # Anthropic's own answer, retry-after included
    assert response.json()["error"]["type"] == "rate_limit_error" and response.headers["retry-after"] == "30"
    (event,) = stored_events(fb_proxy.app, 1)
    assert (event["provider"], event["status"]) == ("bedrock", 502)


def test_a_malformed_converse_body_without_anthropic_is_a_502(fake_anthropic: FakeAnthropic,
                                                              fake_bedrock: FakeBedrock) -> None:
    settings = make_settings(fake_anthropic.url, bedrock_endpoint_url=fake_bedrock.url, force_fallback=True,
                             default_fallback_policy="anthropic_first")
    for running in start_proxy(settings, in_process=True):
        fake_bedrock.enqueue(Reply(json_body={"output": {"message": {"content": "abc"}}}))
        response = post(running, HELLO)
        assert response.status_code == 502
        assert response.json()["error"] == {"type": "api_error",
                                            "message": "Bedrock: malformed response (AttributeError)"}


@pytest.mark.parametrize("retry_after", ["nan", "NaN", "inf", "-inf", "-30", "1e400", "99999999999999"])
def test_a_retry_after_that_is_not_a_sane_number_still_falls_back_and_cools_down(
        fb_proxy: RunningProxy, fake_anthropic: FakeAnthropic, retry_after: str) -> None:
    fake_anthropic.enqueue(rate_limit_reply(headers={"retry-after": retry_after}))
    first = post(fb_proxy, HELLO)
    assert first.status_code == 200, first.text
    assert first.headers["x-proxy-fallback-reason"] == "rate_limited"
    second = post(fb_proxy, HELLO)  # a cooldown started (from the reset headers, or the default)
    assert second.headers["x-proxy-fallback-reason"] == "cooldown:rate_limited"
    assert [e["status"] for e in stored_events(fb_proxy.app, 2)] == [200, 200]


# --- bodies nested too deep ---------------------------------------------------------------------

def deep_object(depth: int, leaf: Any = "x") -> Any:
    value = leaf
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


@pytest.mark.parametrize("body", [
    b"[" * 100_000 + b"]" * 100_000,
    b'{"model":"m","messages":[{"role":"user","content":' + b'{"a":' * 100_000 + b"1" + b"}" * 100_000 + b"}]}",
    json.dumps({**HELLO, "messages": [{"role": "user", "content": deep_object(200)}]}).encode(),
    b"not json",
], ids=["array-100k", "object-100k-in-messages", "200-levels", "not-json"])
def test_a_body_nested_too_deep_is_400_with_exactly_one_usage_event(proxy: RunningProxy,
                                                                    fake_anthropic: FakeAnthropic,
                                                                    body: bytes) -> None:
    response = post(proxy, body)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert "Traceback" not in response.text
    assert fake_anthropic.messages_requests() == []
    (event,) = stored_events(proxy.app, 1)
    assert (event["status"], event["access_key_id"]) == (400, proxy.key_id)


def test_the_deepest_allowed_body_goes_through_the_bedrock_translation(fake_anthropic: FakeAnthropic,
                                                                       fake_bedrock: FakeBedrock) -> None:
    # 128 levels in all: body > messages > message > content > block > input > ... (botocore's
    # validator and serializer recurse over tool input; nothing may raise RecursionError).
    tool_input = deep_object(128 - 5)
    body = {**HELLO, "messages": [
        {"role": "user", "content": "run it"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "t", "input": tool_input}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "ok"}]}]}
    settings = make_settings(fake_anthropic.url, bedrock_endpoint_url=fake_bedrock.url, force_fallback=True,
                             default_fallback_policy="anthropic_first")
    for running in start_proxy(settings, in_process=True):
        response = post(running, body)
        assert response.status_code == 200, response.text
        assert fake_bedrock.calls("Converse")[0].json()["messages"][1]["content"][0]["toolUse"]["input"] == tool_input
        assert post(running, {**body, "messages": [{"role": "user", "content": deep_object(130)}]}).status_code == 400


# --- streams still open when the shutdown grace period ends ---------------------------------

class _Server(DrainingServer):
    def install_signal_handlers(self) -> None:  # a thread cannot own signals
        pass


@pytest.mark.parametrize("provider", ["anthropic", "bedrock"])
def test_a_stream_open_at_the_end_of_the_grace_period_gets_an_overloaded_error(
        fake_anthropic: FakeAnthropic, fake_bedrock: FakeBedrock, provider: str) -> None:
    settings = make_settings(fake_anthropic.url, bedrock_endpoint_url=fake_bedrock.url,
                             force_fallback=provider == "bedrock", default_fallback_policy="anthropic_first")
    fake_anthropic.enqueue(text_reply("never finished", chunk_delay_s=30))
    fake_bedrock.enqueue(stream_text("never finished", chunk=2, delays_s=(0, 0, 30)))
    app = create_app(settings)
    server = _Server(uvicorn.Config(app, timeout_graceful_shutdown=1, log_level="warning", lifespan="on"),
                     drain=app.state.drain)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    try:
        while not server.started:
            assert thread.is_alive()
            time.sleep(0.01)
        with admin_client(url) as admin:
            user = admin.post("/admin/users", json={"name": "Ada", "email": "ada@example.com"}).json()
            key = admin.post(f"/admin/users/{user['id']}/access-keys", json={"name": "laptop"}).json()["key"]
        with httpx.stream("POST", f"{url}/v1/messages", json={**HELLO, "stream": True}, headers=headers(key),
                          timeout=30) as response:
            chunks = response.iter_raw()
            received = next(chunks)
            assert b"message_start" in received
            server.should_exit = True  # what SIGTERM does
            received += b"".join(chunks)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
    assert not thread.is_alive()
    events = sse_events(received)
    assert events[0][0] == "message_start"
    assert events[-1] == ("error", {"type": "error", "error": {
        "type": "overloaded_error", "message": "the proxy is shutting down; retry the request"}})
    (event,) = stored_events(app, 1)  # written by the lifespan's final flush
    assert (event["provider"], event["status"], event["notes"][0]) == (provider, 529, "shutdown")
    # Text streamed before the cut and no final usage frame: the output floor applies too.
    assert set(event["notes"]) <= {"shutdown", "output_tokens_floor"}
    assert metric(app, "claude_proxy_streams_cut_by_shutdown_total") == 1


def test_a_stream_cut_before_its_final_usage_frame_is_billed_at_the_streamed_floor(
        proxy: RunningProxy, fake_anthropic: FakeAnthropic) -> None:
    text = "x" * 401  # 401 characters streamed: at least ceil(401 / 4) = 101 output tokens
    deltas = [sse_frame({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": part}})
              for part in (text[:200], text[200:])]
    fake_anthropic.enqueue(sse_reply(MESSAGE_START, *deltas))  # no message_delta, no message_stop
    events = sse_events(stream_raw(proxy, HELLO).content)
    assert [name for name, _ in events][-1] == "error"
    (event,) = stored_events(proxy.app, 1)
    assert (event["output_tokens"], event["input_tokens"]) == (101, 7)
    assert "output_tokens_floor" in event["notes"]


def test_a_complete_stream_is_billed_as_reported_not_floored(proxy: RunningProxy, fake_anthropic: FakeAnthropic) -> None:
    delta = sse_frame({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "y" * 400}})
    final = sse_frame({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 3}})
    fake_anthropic.enqueue(sse_reply(MESSAGE_START, delta, final, sse_frame({"type": "message_stop"})))
    assert [name for name, _ in sse_events(stream_raw(proxy, HELLO).content)][-1] == "message_stop"
    (event,) = stored_events(proxy.app, 1)
    assert event["output_tokens"] == 3 and "output_tokens_floor" not in event["notes"]


def test_claude_code_session_and_agent_headers_are_recorded_on_the_usage_event(
        proxy: RunningProxy, fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.enqueue(text_reply("ok"))
    response = proxy.http.post("/v1/messages", json=HELLO, timeout=30, headers={
        **headers(proxy.key), "x-claude-code-session-id": "sess-1", "x-claude-code-agent-id": "agent-7",
        "x-claude-code-parent-agent-id": "main"})
    assert response.status_code == 200
    (event,) = stored_events(proxy.app, 1)
    assert (event["session_id"], event["agent_id"], event["parent_agent_id"]) == ("sess-1", "agent-7", "main")
    assert event["user_id"] != "agent-7"
