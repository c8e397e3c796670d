"""A client that leaves a stream mid-way (real uvicorn, ASGI spec 2.3, where a gone client shows only
through ``receive()``): recorded once as 499, the upstream connection given back, nothing logged as an
ASGI exception, and the next stream on the same proxy served. Pins what a leaner disconnect listener
than Starlette's task group must keep (issue 16, bench/README.md)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import CLIENT_API_KEY, RunningProxy, make_settings, start_proxy
from tests.fakes.anthropic_server import FakeAnthropic, text_reply
from tests.proxy.test_faults import HELLO, stored_events


@pytest.fixture
def socket_proxy(fake_anthropic: FakeAnthropic) -> Iterator[RunningProxy]:
    """On a loopback socket: a client leaving is what this module tests."""
    yield from start_proxy(make_settings(fake_anthropic.url))


def test_a_client_leaving_mid_stream_is_499_once_and_frees_the_upstream(
        socket_proxy: RunningProxy, fake_anthropic: FakeAnthropic, caplog: pytest.LogCaptureFixture) -> None:
    proxy = socket_proxy
    headers = {"x-proxy-key": proxy.key, "x-api-key": CLIENT_API_KEY, "content-type": "application/json"}
    fake_anthropic.enqueue(text_reply("held", chunk_delay_s=30))  # 30 s between events: still open when we leave
    with caplog.at_level(logging.INFO), httpx.Client(timeout=30) as client:
        request = client.build_request("POST", f"{proxy.url}/v1/messages", json={**HELLO, "stream": True},
                                       headers=headers)
        response = client.send(request, stream=True)
        assert b"message_start" in next(response.iter_raw())
        response.close()  # the client leaves
        upstream = proxy.services.forwarder._upstream
        deadline = time.monotonic() + 10
        while upstream.in_flight and time.monotonic() < deadline:
            time.sleep(0.02)
        assert upstream.in_flight == 0
        fake_anthropic.enqueue(text_reply("again"))
        again = client.post(f"{proxy.url}/v1/messages", json={**HELLO, "stream": True}, headers=headers)
        assert again.status_code == 200 and b"message_stop" in again.content
    events = stored_events(proxy.app, 2)
    assert [e["status"] for e in events] == [499, 200]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
