"""ConverseStream (or InvokeModelWithResponseStream) events -> the Anthropic SSE bytes a ``Relay`` sends, with a ``ping`` every
``ping_interval_s`` seconds while Bedrock is silent (Anthropic's keep-alive; Claude Code gives up on
a stream silent for 300 s).

Shape: one reader task per stream moves the runtime's events into a bounded queue
(``READ_AHEAD_EVENTS``; when the client reads slowly the reader waits, and TCP pushes back on
Bedrock). The relay side takes every event already queued, translates them and yields them as one
chunk, so the events of one network read cost one ``send``, as Anthropic's own chunks do; it never
waits for more to batch. One timer per stream, re-armed once per interval (not per event), queues
a ``ping`` when no event came for a whole interval.
Why: the previous loop made a task and an ``asyncio.wait`` (with its timer) for every event and
sent every translated event on its own (issue 16: CPU per relayed event; bench/bedrock_overhead.py).

Errors: a ProxyError from the runtime (mid-stream failure, corrupt frame) or from the translator
(``MalformedResponse``) is raised after the events before it have been yielded; the Relay turns it
into an SSE ``error`` event. On exit (end, error, cancellation, ``aclose``) the reader task is
cancelled and awaited before the caller closes ``events`` (``aclose()`` on a generator that is still
running raises instead of closing).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import anyio

from app.bedrock.invoke_response import InvokeStreamTranslator
from app.bedrock.stream import StreamTranslator, encode_sse, ping_event

READ_AHEAD_EVENTS = 64  # ConverseStream events queued ahead of a slow client
_END = object()  # the runtime's generator is exhausted
_PING = object()  # Bedrock was silent for a whole interval


async def _read(events: AsyncIterator[dict[str, Any]], queue: asyncio.Queue[Any]) -> None:
    """The reader task: every event, then ``_END``, or the exception that ended the stream.

    Until the first ``contentBlockDelta`` it lets the relay side run after each event, so the first
    token goes out before the events that came in the same read are parsed (time to first token);
    after that, events already received are parsed in one go and go out as one chunk."""
    first_token = False
    try:
        async for event in events:
            await queue.put(event)
            if not first_token:
                first_token = _is_first_token(event)
                await asyncio.sleep(0)
    except Exception as exc:  # noqa: BLE001 - handed to the relay side, which raises it in order
        await queue.put(exc)
        return
    await queue.put(_END)


def _is_first_token(event: dict[str, Any]) -> bool:
    """A content delta: ConverseStream's ``contentBlockDelta``, or an InvokeModelWithResponseStream
    chunk holding a native ``content_block_delta`` event."""
    if "contentBlockDelta" in event:
        return True
    chunk = event.get("chunk")
    return isinstance(chunk, dict) and b'"content_block_delta"' in (chunk.get("bytes") or b"")


class _Pings:
    """Queues ``_PING`` when nothing was taken from the queue for ``interval_s`` seconds.
    ``seen()`` (once per batch) is all the per-event cost; the timer is re-armed once per interval."""

    def __init__(self, queue: asyncio.Queue[Any], interval_s: float) -> None:
        self._loop = asyncio.get_running_loop()
        self._queue, self._interval_s = queue, interval_s
        self._last = self._loop.time()
        self._armed_for = self._last
        self._handle = self._loop.call_at(self._last + interval_s, self._tick)

    def seen(self) -> None:
        self._last = self._loop.time()

    def _tick(self) -> None:
        if self._last == self._armed_for and self._queue.empty():  # silent since the timer was armed
            self._queue.put_nowait(_PING)
            self._last = self._loop.time()
        self._armed_for = self._last
        self._handle = self._loop.call_at(self._last + self._interval_s, self._tick)

    def cancel(self) -> None:
        self._handle.cancel()


async def translated_sse(events: AsyncIterator[dict[str, Any]], first: dict[str, Any] | None,
                         translator: StreamTranslator | InvokeStreamTranslator, *, ping_interval_s: float) -> AsyncGenerator[bytes, None]:
    """``first`` (already read from ``events``; None: the stream had no event) and the rest of
    ``events`` as SSE bytes, one chunk per batch of events that had arrived. Raises ProxyError
    (see the module doc). The caller closes ``events`` afterwards."""
    if first is None:
        if end := b"".join(map(encode_sse, translator.finish())):
            yield end
        return
    if start := b"".join(map(encode_sse, translator.feed(first))):
        yield start
    queue: asyncio.Queue[Any] = asyncio.Queue(READ_AHEAD_EVENTS)
    reader = asyncio.get_running_loop().create_task(_read(events, queue))
    pings = _Pings(queue, ping_interval_s)
    try:
        ended = False
        while not ended:
            item = await queue.get()
            parts: list[bytes] = []
            while True:
                if isinstance(item, dict):
                    try:
                        parts.extend(map(encode_sse, translator.feed(item)))
                    except Exception:
                        if parts:
                            yield b"".join(parts)
                        raise
                elif item is _PING:
                    parts.append(ping_event())
                elif item is _END:
                    parts.extend(map(encode_sse, translator.finish()))
                    ended = True
                    break
                else:  # the exception that ended the stream, after the events before it
                    if parts:
                        yield b"".join(parts)
                    raise item
                if queue.empty():
                    break
                item = queue.get_nowait()
            pings.seen()
            if parts:
                yield b"".join(parts)
    finally:
        pings.cancel()
        if not reader.done():
            with anyio.CancelScope(shield=True):
                reader.cancel()
                await asyncio.wait({reader})
