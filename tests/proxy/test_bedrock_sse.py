"""app/proxy/bedrock_sse.py: ConverseStream events -> SSE chunks for the Relay.

The source is a generator the test feeds through a queue, so it decides which events "arrived
together" and when Bedrock is silent; the translator is the real one. Pinned: the first token goes
out on its own, later events that had already arrived go out as one chunk, nothing waits to batch,
events before a failure are sent before it, pings during silence only, and closing the SSE stream
mid-way leaves the source closable."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any

import pytest

from app.bedrock.response import MalformedResponse
from app.bedrock.stream import StreamTranslator, encode_sse, ping_event
from app.errors import UpstreamUnavailable
from app.proxy.bedrock_sse import translated_sse

END = object()
START = {"messageStart": {"role": "assistant"}}
TAIL = [{"contentBlockStop": {"contentBlockIndex": 0}}, {"messageStop": {"stopReason": "end_turn"}},
        {"metadata": {"usage": {"inputTokens": 3, "outputTokens": 4, "totalTokens": 7}, "metrics": {"latencyMs": 1}}}]


def delta(text: str) -> dict[str, Any]:
    return {"contentBlockDelta": {"contentBlockIndex": 0, "delta": {"text": text}}}


class Source:
    """An event generator fed by the test: ``put(*items)`` makes them available at once
    (an exception is raised where it stands, ``END`` ends the stream)."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self.events = self._generate()

    def put(self, *items: Any) -> None:
        for item in items:
            self._queue.put_nowait(item)

    async def _generate(self) -> AsyncGenerator[dict[str, Any], None]:
        while (item := await self._queue.get()) is not END:
            if isinstance(item, BaseException):
                raise item
            yield item


def expected(*events: dict[str, Any]) -> bytes:
    """What one translator makes of ``events`` and the end, as bytes."""
    translator = StreamTranslator("m", "msg_1")
    out = [frame for event in events for frame in translator.feed(event)] + translator.finish()
    return b"".join(map(encode_sse, out))


def sse(source: Source, *, ping_interval_s: float = 60.0) -> AsyncGenerator[bytes, None]:
    return translated_sse(source.events, START, StreamTranslator("m", "msg_1"), ping_interval_s=ping_interval_s)


async def test_first_token_alone_then_what_had_arrived_as_one_chunk() -> None:
    source = Source()
    source.put(delta("a"), delta("b"), delta("c"), *TAIL, END)
    chunks = [chunk async for chunk in sse(source)]
    assert len(chunks) == 3, chunks  # message_start | start + first delta | the rest, one chunk
    assert chunks[0].startswith(b"event: message_start\n") and chunks[0].count(b"event: ") == 1
    assert chunks[1].count(b"event: content_block_delta\n") == 1
    assert b"".join(chunks) == expected(START, delta("a"), delta("b"), delta("c"), *TAIL)


async def test_events_that_come_apart_are_not_held_back() -> None:
    source = Source()
    stream = sse(source)
    assert b"message_start" in await anext(stream)
    for text in ("one", "two", "three"):
        source.put(delta(text))  # the next event is only made available once this one went out
        chunk = await asyncio.wait_for(anext(stream), 5)
        assert chunk.count(b"event: content_block_delta\n") == 1 and text.encode() in chunk
    source.put(*TAIL, END)
    assert b"message_stop" in b"".join([chunk async for chunk in stream])


async def test_a_failure_comes_after_the_events_before_it() -> None:
    source = Source()
    source.put(delta("a"), delta("b"), UpstreamUnavailable("Bedrock: stream cut"))
    stream = sse(source)
    sent = b""
    with pytest.raises(UpstreamUnavailable, match="stream cut"):
        async for chunk in stream:
            sent += chunk
    assert sent.count(b"event: content_block_delta\n") == 2 and b'"text":"b"' in sent


async def test_a_malformed_event_comes_after_the_events_batched_before_it() -> None:
    source = Source()
    bad = {"contentBlockDelta": {"contentBlockIndex": 0, "delta": {"text": 42}}}
    source.put(delta("a"), delta("b"), bad, END)
    sent = b""
    with pytest.raises(MalformedResponse):
        async for chunk in sse(source):
            sent += chunk
    assert sent.count(b"event: content_block_delta\n") == 2 and b'"text":"b"' in sent


async def test_pings_while_bedrock_is_silent() -> None:
    source = Source()
    stream = sse(source, ping_interval_s=0.02)
    await anext(stream)
    for _ in range(2):  # silent: one ping per interval, for as long as it lasts
        assert await asyncio.wait_for(anext(stream), 5) == ping_event()
    source.put(delta("a"), *TAIL, END)
    rest = b"".join([chunk async for chunk in stream])
    assert rest.endswith(b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")


async def test_no_ping_while_events_keep_coming() -> None:
    source = Source()
    stream = sse(source, ping_interval_s=0.3)

    async def talk() -> None:
        for i in range(45):  # 0.45 s in all, an event every 10 ms: never an interval's silence
            source.put(delta(str(i)))
            await asyncio.sleep(0.01)
        source.put(*TAIL, END)

    talker = asyncio.create_task(talk())
    sent = b"".join([chunk async for chunk in stream])
    await talker
    assert sent.count(b"event: content_block_delta\n") == 45 and ping_event() not in sent


async def test_closing_mid_stream_stops_the_reader_and_leaves_the_source_closable() -> None:
    source = Source()
    stream = sse(source)
    before = asyncio.all_tasks()
    await anext(stream)
    source.put(delta("a"))
    await anext(stream)
    reader = asyncio.all_tasks() - before
    assert len(reader) == 1  # one task per stream, not one per event
    await stream.aclose()  # the reader was waiting inside source.events
    assert all(task.done() for task in reader)
    await source.events.aclose()  # raises if the reader were still running it
