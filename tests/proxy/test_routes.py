"""The core proxy path with real clients: the official ``anthropic`` SDK and raw httpx, against a
fake Anthropic on loopback. Checks byte-for-byte forwarding, credentials, headers and usage."""

from __future__ import annotations

import concurrent.futures
import json
from collections.abc import Iterator

import anthropic
import httpx2
import pytest

from tests.conftest import CLIENT_API_KEY, RunningProxy, make_settings, start_proxy
from tests.fakes.anthropic_server import (DEFAULT_USAGE, FakeAnthropic, error_reply, rate_limit_reply,
                                          text_reply)
from tests.support.constants import MODEL



def sdk(proxy: RunningProxy, *, key: str | None = None, **kwargs: object) -> anthropic.Anthropic:
    kwargs.setdefault("http_client", proxy.client())
    return anthropic.Anthropic(api_key=CLIENT_API_KEY, base_url=proxy.url, max_retries=0,
                               default_headers={"x-proxy-key": key or proxy.key}, **kwargs)


@pytest.fixture
def socket_proxy(fake_anthropic: FakeAnthropic) -> Iterator[RunningProxy]:
    """The proxy on a loopback socket: for what the SDK puts on the wire."""
    yield from start_proxy(make_settings(fake_anthropic.url))


def test_sdk_create_reaches_upstream_with_client_credential_and_without_proxy_key(
        socket_proxy: RunningProxy, fake_anthropic: FakeAnthropic) -> None:
    proxy = socket_proxy
    sent: list[httpx2.Request] = []
    http_client = httpx2.Client(event_hooks={"request": [sent.append]})
    message = sdk(proxy, http_client=http_client).messages.create(
        model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "hi"}])
    assert message.content[0].text == "Hello from fake Anthropic"
    assert message.usage.output_tokens == DEFAULT_USAGE["output_tokens"]
    received = fake_anthropic.messages_requests()[-1]
    assert received.body == sent[0].content
    # Every end-to-end header the SDK sent arrives unchanged (the SDK picks x-api-key or
    # Authorization: Bearer for the credential; either way it must arrive as sent).
    for name, value in sent[0].headers.items():
        if name.lower() in ("host", "content-length", "accept-encoding", "connection", "x-proxy-key"):
            continue
        assert received.header(name) == value, name
    assert CLIENT_API_KEY in (received.header("x-api-key"), (received.header("authorization") or "")[7:])
    assert received.header("x-proxy-key") is None
    assert all(proxy.key not in value for _, value in received.headers)


def test_body_is_forwarded_byte_for_byte_with_query_string(proxy: RunningProxy, fake_anthropic: FakeAnthropic) -> None:
    # Odd spacing, key order, unicode escapes and a float: any re-serialization would change them.
    body = (b'{ "stream":false,"max_tokens" : 16, "model":"%s","temperature":1.0,'
            b'"messages":[{"role":"user","content":"caf\\u00e9 \xe2\x98\x95"}] ,"metadata":{"user_id":"u"}}' % MODEL.encode())
    response = proxy.http.post("/v1/messages?beta=true", content=body,
                          headers={"x-proxy-key": proxy.key, "x-api-key": CLIENT_API_KEY,
                                   "content-type": "application/json", "anthropic-beta": "a-1,b-2",
                                   "x-stainless-lang": "python"})
    assert response.status_code == 200, response.text
    received = fake_anthropic.messages_requests()[-1]
    assert received.body == body
    assert received.query == "beta=true"
    assert received.header("anthropic-beta") == "a-1,b-2"
    assert received.header("x-stainless-lang") == "python"
    assert response.headers["x-proxy-provider"] == "anthropic"


def test_sdk_stream_final_message_and_usage_recorded(proxy: RunningProxy, fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.enqueue(text_reply("streamed answer " * 20, chunk_delay_s=0.001))
    with sdk(proxy).messages.stream(model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "hi"}]) as s:
        final = s.get_final_message()
    assert final.content[0].text == "streamed answer " * 20
    totals = proxy.wait_for_usage(lambda t: t["requests"] >= 1)
    assert totals["requests"] == 1
    for field in ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"):
        assert totals[field] == DEFAULT_USAGE[field], field


def test_sdk_count_tokens(proxy: RunningProxy, fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.count_tokens_input_tokens = 4242
    result = sdk(proxy).messages.count_tokens(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    assert result.input_tokens == 4242
    assert fake_anthropic.requests[-1].path == "/v1/messages/count_tokens"


def test_access_key_in_path_and_bearer_credential(proxy: RunningProxy, fake_anthropic: FakeAnthropic) -> None:
    client = anthropic.Anthropic(auth_token="sk-ant-oat01-subscription", base_url=f"{proxy.url}/ak/{proxy.key}",
                                 http_client=proxy.client(), max_retries=0)
    message = client.messages.create(model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "hi"}])
    assert message.content[0].text
    received = fake_anthropic.messages_requests()[-1]
    assert received.header("authorization") == "Bearer sk-ant-oat01-subscription"
    assert received.header("x-api-key") is None
    assert received.path == "/v1/messages"


def test_upstream_headers_pass_back_and_errors_pass_through(proxy: RunningProxy,
                                                           fake_anthropic: FakeAnthropic) -> None:
    key = proxy.new_key(fallback_policy="anthropic_only")["key"]
    fake_anthropic.enqueue(text_reply(headers={"request-id": "req_abc", "anthropic-ratelimit-tokens-remaining": "99"}))
    response = proxy.http.post("/v1/messages", json={"model": MODEL, "max_tokens": 8, "messages": []},
                          headers={"x-proxy-key": key, "x-api-key": CLIENT_API_KEY})
    assert response.headers["request-id"] == "req_abc"
    assert response.headers["anthropic-ratelimit-tokens-remaining"] == "99"
    fake_anthropic.enqueue(rate_limit_reply(retry_after_s=30))
    with pytest.raises(anthropic.RateLimitError) as caught:
        sdk(proxy, key=key).messages.create(model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "x"}])
    assert caught.value.response.headers["retry-after"] == "30"
    fake_anthropic.enqueue(error_reply(400, "messages: bad"))
    with pytest.raises(anthropic.BadRequestError, match="messages: bad"):
        sdk(proxy, key=key).messages.create(model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "x"}])


def test_hello_probes_and_health(proxy: RunningProxy) -> None:
    for path in ("/api/hello", f"/ak/{proxy.key}/api/hello"):
        assert proxy.http.get(path).status_code == 200
        assert proxy.http.head(path).status_code == 200
    assert proxy.http.get("/health").json() == {"status": "ok"}
    assert proxy.http.get("/ready").json()["store"] is True


def test_concurrent_requests_record_exact_usage(proxy: RunningProxy) -> None:
    n = 60

    def one(i: int) -> int:
        stream = i % 2 == 0
        response = proxy.http.post("/v1/messages", timeout=30,
                              json={"model": MODEL, "max_tokens": 8, "stream": stream,
                                    "messages": [{"role": "user", "content": str(i)}]},
                              headers={"x-proxy-key": proxy.key, "x-api-key": CLIENT_API_KEY})
        return response.status_code

    with concurrent.futures.ThreadPoolExecutor(max_workers=20) as pool:
        assert set(pool.map(one, range(n))) == {200}
    totals = proxy.wait_for_usage(lambda t: t["requests"] >= n)
    assert totals["requests"] == n
    for field in ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"):
        assert totals[field] == n * DEFAULT_USAGE[field], field
    by_key = proxy.usage_totals(access_key_id=proxy.key_id)
    assert by_key["requests"] == n


def test_mid_stream_failure_becomes_error_event(proxy: RunningProxy, fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.enqueue(text_reply("x" * 400, abort_after_events=4))
    with proxy.http.stream("POST", "/v1/messages", timeout=30,
                      json={"model": MODEL, "max_tokens": 8, "stream": True,
                            "messages": [{"role": "user", "content": "x"}]},
                      headers={"x-proxy-key": proxy.key, "x-api-key": CLIENT_API_KEY}) as response:
        body = response.read()
    assert response.status_code == 200
    assert body.count(b"event: message_start") == 1
    assert body.rstrip().endswith(b"}")
    last_event = body.strip().split(b"\n\n")[-1]
    assert last_event.startswith(b"event: error\ndata: ")
    assert json.loads(last_event.split(b"data: ", 1)[1])["type"] == "error"
    totals = proxy.wait_for_usage(lambda t: t["requests"] >= 1)
    assert totals["input_tokens"] == DEFAULT_USAGE["input_tokens"]  # message_start's usage kept


def test_upstream_unreachable_and_stalled_give_5xx_envelopes(fake_anthropic: FakeAnthropic) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    settings = make_settings(f"http://127.0.0.1:{closed_port}", default_fallback_policy="anthropic_only")
    for running in start_proxy(settings, in_process=True):
        response = running.http.post("/v1/messages", json={"model": MODEL, "messages": []},
                                     headers={"x-proxy-key": running.key, "x-api-key": CLIENT_API_KEY})
        assert response.status_code == 502
        assert response.json()["error"]["type"] == "api_error"
    fake_anthropic.enqueue(text_reply(stall_s=5))
    settings = make_settings(fake_anthropic.url, read_timeout_s=0.5, default_fallback_policy="anthropic_only")
    for running in start_proxy(settings, in_process=True):
        response = running.http.post("/v1/messages", json={"model": MODEL, "messages": []},
                                     headers={"x-proxy-key": running.key, "x-api-key": CLIENT_API_KEY})
        assert response.status_code == 504
        assert response.json()["error"]["type"] == "timeout_error"
