"""The Relay's last body message: the chunk that completes the stream carries the end of the response
when the upstream's body has ended (``at_eof``); otherwise the end is an empty message after it, and a
stream cut before ``message_stop`` still gets its SSE error before the end."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable
from typing import Any

from starlette.datastructures import Headers

from app.auth.access import Principal
from app.proxy.outcome import Outcome
from app.proxy.relay import Relay
from app.proxy.request import ProxyRequest

START = (b'event: message_start\ndata: {"type":"message_start","message":{"model":"m",'
         b'"usage":{"input_tokens":3,"output_tokens":1}}}\n\n')
DELTA = b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"hi"}}\n\n'
STOP = (b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"},'
        b'"usage":{"output_tokens":2}}\n\nevent: message_stop\ndata: {"type":"message_stop"}\n\n')


def preq() -> ProxyRequest:
    raw = [(b"content-type", b"application/json")]
    return ProxyRequest(endpoint="messages", path="/v1/messages", query="", raw_headers=raw, headers=Headers(raw=raw),
                        body=b"{}", params={"model": "m", "stream": True}, client_ip="127.0.0.1",
                        principal=Principal(access_key_id="key_1", user_id="user_1", key_prefix="sk-ccp-abc"))


async def relayed(chunks: list[bytes], at_eof: Callable[[], bool] | None) -> tuple[list[dict[str, Any]], Outcome, list[int]]:
    """Run a Relay over ``chunks`` as ASGI 2.3 (uvicorn's); the messages sent, the outcome, and how
    often it was recorded."""
    async def source() -> AsyncGenerator[bytes, None]:
        for chunk in chunks:
            yield chunk

    async def close() -> None:
        pass

    never = asyncio.Event()

    async def receive() -> dict[str, Any]:
        await never.wait()
        return {"type": "http.disconnect"}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    outcome, records = Outcome(), []
    relay = Relay(preq(), outcome, source(), close=close, upstream="Anthropic", status_code=200,
                  headers=[("content-type", "text/event-stream")], at_eof=at_eof)
    await relay.recording(lambda: records.append(1))({"type": "http", "asgi": {"spec_version": "2.3"}}, receive, send)
    return sent, outcome, records


def bodies(sent: list[dict[str, Any]]) -> list[tuple[bytes, bool]]:
    return [(m["body"], m["more_body"]) for m in sent if m["type"] == "http.response.body"]


async def test_the_completing_chunk_ends_the_response_when_the_upstream_body_has_ended() -> None:
    sent, outcome, records = await relayed([START, DELTA, STOP], at_eof=lambda: True)
    assert bodies(sent) == [(START, True), (DELTA, True), (STOP, False)]  # the end goes with the last chunk
    assert outcome.status == 200 and outcome.usage["output_tokens"] == 2 and records == [1]


async def test_while_the_upstream_body_has_not_ended_the_end_is_an_empty_message_after_it() -> None:
    sent, outcome, records = await relayed([START, DELTA, STOP], at_eof=lambda: False)
    assert bodies(sent) == [(START, True), (DELTA, True), (STOP, True), (b"", False)]
    assert outcome.status == 200 and records == [1]


async def test_at_eof_alone_does_not_end_a_stream_cut_before_message_stop() -> None:
    sent, outcome, records = await relayed([START, DELTA], at_eof=lambda: True)
    body = bodies(sent)
    assert body[:2] == [(START, True), (DELTA, True)]
    assert b"event: error" in body[2][0] and body[2][1] is True  # the SSE error, then the end
    assert body[-1] == (b"", False)
    assert outcome.status == 502 and records == [1]


async def test_without_at_eof_the_end_is_an_empty_message() -> None:
    sent, _, records = await relayed([START + DELTA + STOP], at_eof=None)
    assert bodies(sent) == [(START + DELTA + STOP, True), (b"", False)] and records == [1]
