"""Retry hints Claude Code reads, end to end through the real app and both fakes: Anthropic's own
(``x-should-retry``, ``retry-after``, ``anthropic-ratelimit-unified-*``) pass unchanged on its
answers and never show up on an answer served from Bedrock; the proxy's own 429s carry
``retry-after`` in whole seconds, and a cap no retry can outlast says ``x-should-retry: false``."""

from __future__ import annotations


import anthropic
import httpx
import pytest

from tests.conftest import CLIENT_API_KEY, RunningProxy
from tests.fakes.anthropic_server import FakeAnthropic, rate_limit_reply, text_reply
from tests.fakes.bedrock_server import FakeBedrock, http_error
from tests.support.constants import MODEL

HELLO = {"model": MODEL, "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}
UNIFIED = {"anthropic-ratelimit-unified-status": "allowed_warning",
           "anthropic-ratelimit-unified-representative-claim": "five_hour",
           "anthropic-ratelimit-unified-reset": "1786147200",
           "anthropic-ratelimit-unified-5h-utilization": "0.82"}


def sdk(proxy: RunningProxy, key: str | None = None) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key=CLIENT_API_KEY, base_url=proxy.url, http_client=proxy.client(), max_retries=0,
                               default_headers={"x-proxy-key": key or proxy.key})


def _hints(headers: httpx.Headers) -> dict[str, str]:
    return {k: v for k, v in headers.items()
            if k.startswith("anthropic-ratelimit-") or k in ("x-should-retry", "retry-after")}


def test_anthropic_answers_keep_its_unified_limit_headers(proxy: RunningProxy, fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.enqueue(text_reply("ok", headers=UNIFIED))
    response = sdk(proxy).messages.with_raw_response.create(**HELLO)
    assert _hints(response.headers) == UNIFIED


def test_anthropic_refusals_keep_its_retry_hints(proxy: RunningProxy, fake_anthropic: FakeAnthropic) -> None:
    # anthropic_only (the test default): Anthropic's 429 reaches the client as it was sent.
    fake_anthropic.enqueue(rate_limit_reply(retry_after_s=37, headers={
        "x-should-retry": "false", "anthropic-ratelimit-unified-status": "rejected",
        "anthropic-ratelimit-unified-reset": "1786147200"}))
    with pytest.raises(anthropic.RateLimitError) as info:
        sdk(proxy).messages.create(**HELLO)
    headers = info.value.response.headers
    assert headers["x-should-retry"] == "false" and headers["retry-after"] == "37"
    assert headers["anthropic-ratelimit-unified-status"] == "rejected"
    assert headers["anthropic-ratelimit-unified-reset"] == "1786147200"


def test_bedrock_answers_never_carry_anthropics_hints(fb_proxy: RunningProxy, fake_anthropic: FakeAnthropic,
                                                       fake_bedrock: FakeBedrock) -> None:
    fake_anthropic.enqueue(rate_limit_reply(retry_after_s=30, headers={"x-should-retry": "true", **UNIFIED}))
    response = sdk(fb_proxy).messages.with_raw_response.create(**HELLO)
    assert response.headers["x-proxy-provider"] == "bedrock"
    assert _hints(response.headers) == {}
    with fb_proxy.http.stream("POST", "/v1/messages", json={**HELLO, "stream": True}, timeout=30,
                      headers={"x-proxy-key": fb_proxy.key, "x-api-key": CLIENT_API_KEY}) as streamed:
        streamed.read()
    assert streamed.headers["x-proxy-provider"] == "bedrock"  # in the cooldown the 429 started
    assert _hints(streamed.headers) == {}


def test_bedrock_throttling_is_a_429_with_whole_second_retry_after(fb_proxy: RunningProxy,
                                                                   fake_bedrock: FakeBedrock) -> None:
    key = fb_proxy.new_key(fallback_policy="bedrock_only")
    fake_bedrock.enqueue(http_error(429, "ThrottlingException", "Too many tokens, please wait before trying again."))
    with pytest.raises(anthropic.RateLimitError) as info:
        sdk(fb_proxy, key["key"]).messages.create(**HELLO)
    headers = info.value.response.headers
    assert headers["retry-after"].isdigit() and int(headers["retry-after"]) >= 1
    assert "x-should-retry" not in headers  # a retry may well pass
    assert not any(k.startswith("anthropic-ratelimit-") for k in headers)


def test_a_daily_quota_says_do_not_retry_and_a_minute_one_does_not(proxy: RunningProxy) -> None:
    daily = proxy.new_key()
    minute = proxy.new_key()
    for key, limits in ((daily, {"tokens_per_day": 10}), (minute, {"requests_per_minute": 1})):
        assert proxy.admin.patch(f"/admin/access-keys/{key['id']}", json={"limits": limits}).status_code == 200
    sdk(proxy, minute["key"]).messages.create(**HELLO)
    with pytest.raises(anthropic.RateLimitError) as day_info:
        sdk(proxy, daily["key"]).messages.create(**HELLO)
    with pytest.raises(anthropic.RateLimitError) as minute_info:
        sdk(proxy, minute["key"]).messages.create(**HELLO)
    day_headers, minute_headers = day_info.value.response.headers, minute_info.value.response.headers
    assert day_headers["x-should-retry"] == "false" and day_headers["retry-after"].isdigit()
    assert minute_headers.get("x-should-retry") != "false" and minute_headers["retry-after"].isdigit()
    assert int(minute_headers["retry-after"]) <= 60
