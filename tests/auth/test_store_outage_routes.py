"""A store outage seen from a client of the real proxy (loopback socket, fake Anthropic): faults
are injected at the repository layer of the access-key resolver, the rest of the app is real."""

from __future__ import annotations

import anthropic
import httpx
import pytest

from app.auth.access import AccessKeyResolver
from tests.conftest import CLIENT_API_KEY, RunningProxy
from tests.support.faults import Faulty, Outage

BODY = {"model": "claude-sonnet-4-6", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def outage(proxy: RunningProxy, clock: Clock) -> Outage:
    """Every access-key lookup goes to the store (no 30 s cache) through a switchable fault."""
    services, switch = proxy.services, Outage()
    services.resolver = AccessKeyResolver(Faulty(services.access_keys, switch), Faulty(services.users, switch),
                                          services.secret_key, cache_ttl_s=0, stale_grace_s=900, clock=clock)
    return switch


def send(proxy: RunningProxy, key: str) -> httpx.Response:
    return httpx.post(f"{proxy.url}/v1/messages", json=BODY, timeout=10,
                      headers={"x-proxy-key": key, "x-api-key": CLIENT_API_KEY})


def test_known_keys_keep_working_and_unknown_ones_get_503(proxy: RunningProxy, outage: Outage,
                                                          clock: Clock) -> None:
    fresh = proxy.new_key(name="never used")["key"]
    assert send(proxy, proxy.key).status_code == 200
    outage.down = True
    for _ in range(3):
        assert send(proxy, proxy.key).status_code == 200  # from its last good lookup
    refused = send(proxy, fresh)
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "5"
    body = refused.json()
    assert body["type"] == "error" and body["error"]["type"] == "overloaded_error"
    assert "Traceback" not in refused.text and "ServerSelection" not in refused.text
    outage.down = False
    assert send(proxy, fresh).status_code == 503  # the store is left alone for 2 s after a failure...
    clock.now += 2.5
    assert send(proxy, fresh).status_code == 200
    outage.down = True
    clock.now += 901  # the grace period ends: known keys get 503 too
    assert send(proxy, proxy.key).status_code == 503


def test_the_sdk_retries_a_503_and_gets_through_when_the_store_is_back(proxy: RunningProxy, outage: Outage) -> None:
    fresh = proxy.new_key(name="sdk")["key"]
    outage.down = True
    client = anthropic.Anthropic(api_key=CLIENT_API_KEY, base_url=proxy.url, max_retries=0,
                                 default_headers={"x-proxy-key": fresh})
    with pytest.raises(anthropic.InternalServerError) as refused:
        client.messages.create(**BODY)
    assert refused.value.status_code == 503 and refused.value.body["error"]["type"] == "overloaded_error"


def test_metrics_count_stale_answers_and_refusals(proxy: RunningProxy, outage: Outage) -> None:
    fresh = proxy.new_key(name="m")["key"]
    send(proxy, proxy.key)
    outage.down = True
    send(proxy, proxy.key)
    send(proxy, fresh)
    text = httpx.get(f"{proxy.url}/metrics").text
    assert "claude_proxy_key_lookups_stale_total 1.0" in text
    assert "claude_proxy_key_lookups_unavailable_total 1.0" in text
