"""Issue 10, through the real app: a request whose usage event cannot be stored as it is (a lone
surrogate in ``model``, an upstream usage of 1e308 or a negative count) is served as usual, and
the usage of the requests after it is still counted. The proxy runs on a loopback socket in front
of the fake Anthropic server; requests come from the official SDK and raw httpx."""

from __future__ import annotations

import anthropic
import httpx

from app.usage.sanitize import MAX_TOKENS
from tests.conftest import CLIENT_API_KEY, RunningProxy
from tests.fakes.anthropic_server import DEFAULT_USAGE, FakeAnthropic, text_reply

MODEL = "claude-haiku-4-5"


def raw_post(proxy: RunningProxy, body: bytes) -> httpx.Response:
    return httpx.post(proxy.url + "/v1/messages", content=body, timeout=30, headers={
        "content-type": "application/json", "x-api-key": CLIENT_API_KEY, "x-proxy-key": proxy.key})


def test_poison_usage_is_served_and_later_usage_still_counted(proxy: RunningProxy,
                                                              fake_anthropic: FakeAnthropic) -> None:
    # 1. The model as JSON text "claude-\ud800": a lone surrogate once parsed.
    body = (b'{"model":"claude-\\ud800","max_tokens":8,"stream":true,'
            b'"messages":[{"role":"user","content":"hi"}]}')
    poisoned = raw_post(proxy, body)
    assert poisoned.status_code == 200 and b"message_stop" in poisoned.content
    # 2. An upstream usage of 1e308 and a negative count.
    fake_anthropic.enqueue(text_reply(usage={**DEFAULT_USAGE, "input_tokens": 1e308, "output_tokens": -7}))
    sdk = anthropic.Anthropic(api_key=CLIENT_API_KEY, base_url=proxy.url, max_retries=0, timeout=30,
                              default_headers={"x-proxy-key": proxy.key})
    huge = sdk.messages.create(model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "hi"}])
    assert huge.usage.input_tokens == 1e308  # the client gets Anthropic's answer untouched
    # 3. Ordinary requests after them, streamed and not.
    for _ in range(3):
        sdk.messages.create(model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "hi"}])
    with sdk.messages.stream(model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "hi"}]) as stream:
        stream.get_final_message()

    totals = proxy.wait_for_usage(lambda t: t["requests"] >= 6, granularity="day")
    assert totals["requests"] == 6 and totals["errors"] == 0
    normal = DEFAULT_USAGE["input_tokens"]
    assert totals["input_tokens"] == MAX_TOKENS + 5 * normal  # 1e308 is clamped, the rest exact
    assert totals["output_tokens"] == 0 + 5 * DEFAULT_USAGE["output_tokens"]  # -7 counts as 0
    recorder = proxy.services.recorder
    assert recorder.sanitized == 2 and recorder.dead_lettered == 0 and recorder.depth == 0
    by_model = proxy.admin.get("/admin/usage", params={"granularity": "day"}).json()["by_model"]
    assert by_model["claude-\ufffd"]["requests"] == 1
    metrics = httpx.get(proxy.url + "/metrics").text
    assert "claude_proxy_usage_events_sanitized_total 2.0" in metrics
    assert "claude_proxy_usage_events_dead_lettered_total 0.0" in metrics
