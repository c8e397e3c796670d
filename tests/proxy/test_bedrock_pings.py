"""Bedrock sends no keep-alives; while it is silent mid-stream the proxy sends Anthropic's
``event: ping`` every ``PROXY_BEDROCK_PING_INTERVAL_S`` (Claude Code gives up on a stream silent
for 300 s). Pinned with a fake Bedrock held silent for many ping intervals, read by the official
SDK (which must accept the pings) and by raw httpx (which sees the frames)."""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import pytest

from tests.conftest import CLIENT_API_KEY, RunningProxy, make_settings, start_proxy
from tests.fakes.bedrock_server import FakeBedrock, stream_text
from tests.support.constants import MODEL

HELLO = {"model": MODEL, "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}
PING_INTERVAL_S = 0.05
SILENCE_S = 0.6  # twelve intervals: at least one ping however loaded the machine is


@pytest.fixture
def bedrock_proxy(fake_bedrock: FakeBedrock) -> Iterator[RunningProxy]:
    yield from start_proxy(make_settings("http://127.0.0.1:9", bedrock_endpoint_url=fake_bedrock.url,
                                         default_fallback_policy="bedrock_only",
                                         bedrock_ping_interval_s=PING_INTERVAL_S))


def silent_reply() -> object:
    # messageStart, then silence before the first text delta (a long thinking pause).
    return stream_text("after the pause", chunk=64, delays_s=(0.0, SILENCE_S))


def test_raw_stream_has_ping_frames_during_the_silence(bedrock_proxy: RunningProxy,
                                                       fake_bedrock: FakeBedrock) -> None:
    fake_bedrock.enqueue(silent_reply())
    with bedrock_proxy.http.stream("POST", "/v1/messages", json={**HELLO, "stream": True}, timeout=30,
                      headers={"x-proxy-key": bedrock_proxy.key, "x-api-key": CLIENT_API_KEY}) as response:
        body = response.read()
    names = [line.removeprefix(b"event: ").decode() for line in body.split(b"\n") if line.startswith(b"event: ")]
    assert names[0] == "message_start"
    first_delta = names.index("content_block_delta")
    assert "ping" in names[:first_delta], names  # pings came while Bedrock was silent
    assert b'event: ping\ndata: {"type":"ping"}\n\n' in body or b'event: ping\ndata: {"type": "ping"}\n\n' in body
    assert names[-1] == "message_stop"


def test_sdk_reads_through_the_pings(bedrock_proxy: RunningProxy, fake_bedrock: FakeBedrock) -> None:
    fake_bedrock.enqueue(silent_reply())
    client = anthropic.Anthropic(api_key=CLIENT_API_KEY, base_url=bedrock_proxy.url, http_client=bedrock_proxy.client(), max_retries=0,
                                 default_headers={"x-proxy-key": bedrock_proxy.key})
    seen: list[str] = []
    with client.messages.stream(**HELLO) as stream:
        for event in stream:
            seen.append(event.type)
        final = stream.get_final_message()
    assert final.content[0].text == "after the pause"
    assert seen[0] == "message_start" and "text" in seen
