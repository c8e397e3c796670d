"""The one streaming relay for both providers: SSE bytes out as they come, usage and time to first
token read on the way, and the request's outcome recorded once when the stream ends, however it ends.

A provider hands the relay ``source``, an async iterator of SSE bytes in Anthropic's stream grammar
(Anthropic: aiohttp's reads as they arrive; Bedrock: the translated events, with ``ping``
frames while Bedrock is silent), which raises ProxyError when the upstream fails mid-stream, and
``close``, which releases the upstream (the HTTP response, the connection slot).

While bytes pass, ``UsageTap`` reads them: usage (``message_start`` / ``message_delta``) and the time
to first token, defined for both providers as arrival -> the first ``content_block_delta`` event
sent to the client (ms). After the first byte there is no fallback; instead:

- the upstream fails (ProxyError), or ends before ``message_stop`` -> an SSE ``error`` event, then
  the stream ends cleanly (status of the error; 502 ``api_error`` for a cut stream);
- an event whose ``data`` is not a JSON object -> the events before it, then a 502 ``api_error``
  event instead of it and the rest;
- an in-stream ``error`` event from the upstream passes through and the status becomes 500 with its type;
- a bug of ours -> 500 ``api_error`` event ("internal proxy error"), never a reset;
- cancellation: shutdown cut the stream (``drain.py``: 529, note ``shutdown``) or the client left (499).

The outcome is recorded and the upstream closed in a shielded cancel scope, so a client disconnect
cannot skip either; a response that never started streaming (the client left first) is recorded too.
Source: https://docs.anthropic.com/en/api/messages-streaming
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable

import anyio
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from app.errors import ProxyError, sse_error_event
from app.proxy.drain import Drain, cancelled_outcome
from app.proxy.outcome import Outcome
from app.proxy.request import ProxyRequest
from app.proxy.responses import encode_headers
from app.proxy.usage_tap import UsageTap
from app.usage.floor import FLOOR_NOTE, billed_output_tokens

log = logging.getLogger(__name__)
_LISTENER_SPECS = frozenset({"2.0", "2.1", "2.2", "2.3"})  # a gone client shows only through receive()


async def _cancel_on_disconnect(receive: Receive, scope: anyio.CancelScope, relay: Relay) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    if not relay._ending:  # a relay already recording and closing finishes that first
        scope.cancel()


class Relay(StreamingResponse):
    """A streamed answer (``status_code``, exact ``headers``) relayed from ``source``.

    ``upstream``: the provider's name for messages ("Anthropic", "Bedrock"). The caller that owns
    the outcome passes its record call with ``recording(record)`` before returning the response.
    ``at_eof`` (optional): True once the upstream's body has ended; a chunk that completes the
    stream (``message_stop`` seen) and after which the body has ended is sent as the response's
    last body message, so the end of the response goes out with it (one write, not two).
    """

    def __init__(self, preq: ProxyRequest, outcome: Outcome, source: AsyncGenerator[bytes, None], *,
                 close: Callable[[], Awaitable[None]], upstream: str, status_code: int,
                 headers: Iterable[tuple[str, str]], drain: Drain | None = None,
                 at_eof: Callable[[], bool] | None = None) -> None:
        self._body = self._relay()
        super().__init__(self._body, status_code=status_code)
        self.raw_headers = encode_headers(headers)
        self._preq, self._outcome, self._source, self._close = preq, outcome, source, close
        self._upstream, self._drain = upstream, drain
        self._record: Callable[[], None] | None = None
        self._started = False
        self._ending = False  # recording and closing: a client disconnect no longer cancels
        self._ended = False  # recorded and closed (the body ran to its end)
        self._cancel_scope: anyio.CancelScope | None = None
        self._at_eof = at_eof  # the upstream's body has ended (nothing left to read)
        self._last = False  # the chunk being sent is the stream's last
        self._sent_end = False

    def recording(self, record: Callable[[], None]) -> Relay:
        """Hand the relay the outcome's one record call; it runs when the stream ends."""
        self._record = record
        return self

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            if scope.get("asgi", {}).get("spec_version", "2.0") in _LISTENER_SPECS:
                await self._stream_until_disconnect(receive, send)
            else:  # ASGI 2.4+ servers raise on a send to a gone client: Starlette's own path
                await super().__call__(scope, receive, send)
        finally:
            if not self._ended:  # the body did not run to its end: cancelled, or never started
                await self._finish_unended()

    async def _finish_unended(self) -> None:
        with anyio.CancelScope(shield=True):
            if self._started:
                # Cancelled while sending a chunk, the body is suspended at a ``yield``: close
                # it now (its cleanup records), not whenever the garbage collector gets to it.
                await self._body.aclose()
            else:  # the client left before the body was asked for
                self._outcome.status, self._outcome.error_type = cancelled_outcome(self._drain, self._preq.notes)
                await self._end()

    async def _stream_until_disconnect(self, receive: Receive, send: Send) -> None:
        """Starlette's ``StreamingResponse`` for ASGI < 2.4 (uvicorn says 2.3), without its task group:
        the body is sent from this task inside a cancel scope, and one plain task waits on ``receive()``
        for ``http.disconnect`` and cancels the scope (an anyio scope, so the relay's shielded clean-up
        still runs to the end). Same behaviour, ~60 us less CPU per stream (bench/README.md, issue 16)."""
        with anyio.CancelScope() as cancel_scope:
            self._cancel_scope = cancel_scope
            listener = asyncio.get_running_loop().create_task(_cancel_on_disconnect(receive, cancel_scope, self))
            try:
                await self.stream_response(send)
            finally:
                listener.cancel()

    async def stream_response(self, send: Send) -> None:
        """Starlette's ``StreamingResponse.stream_response``, except that the last chunk carries the
        end of the response when it is known to be the last (``at_eof``; issue 16)."""
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        async for chunk in self._body:
            if self._sent_end:  # nothing can follow the end (the relay yields nothing after it)
                continue
            self._sent_end = self._last
            await send({"type": "http.response.body", "body": chunk, "more_body": not self._last})
        if not self._sent_end:
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _relay(self) -> AsyncGenerator[bytes, None]:
        self._started = True
        self.raw_headers = []  # sent with http.response.start before the body is asked for: not needed now
        preq, outcome, tap = self._preq, self._outcome, UsageTap()
        preq.drop_body()  # no fallback or retry after this point: the request body is not needed
        outcome.streamed = True
        outcome.status = self.status_code
        try:
            async for chunk in self._source:
                tap.feed(chunk)
                if tap.malformed is not None:
                    # Not Anthropic's grammar: the client gets the events before it, then an error
                    # it can parse instead of it.
                    if tap.malformed_at:
                        yield chunk[:tap.malformed_at]
                    outcome.status, outcome.error_type = 502, "api_error"
                    log.warning("%s sent a malformed %s event; stream ended", self._upstream, tap.malformed)
                    yield sse_error_event("api_error", f"{self._upstream} sent a malformed {tap.malformed} event")
                    return
                if outcome.ttft_ms is None and tap.content_started:
                    outcome.ttft_ms = (time.perf_counter() - preq.started) * 1000
                self._last = tap.complete and self._at_eof is not None and self._at_eof()
                yield chunk
            if not tap.complete and tap.error_type is None:
                # Upstream closed without message_stop: say so rather than end silently.
                outcome.status, outcome.error_type = 502, "api_error"
                yield sse_error_event("api_error", "the upstream stream ended before message_stop")
        except ProxyError as exc:
            outcome.status, outcome.error_type = exc.status_code, exc.error_type
            yield sse_error_event(exc.error_type, exc.message)
        except Exception as exc:  # a bug of ours: the stream still ends with an error, not a reset
            log.error("%s relay failed: %s", self._upstream, type(exc).__name__, exc_info=exc)
            outcome.status, outcome.error_type = 500, "api_error"
            yield sse_error_event("api_error", "internal proxy error")
        except BaseException:
            # Client disconnected (cancellation) or shutdown cut the stream: record what we have.
            outcome.status, outcome.error_type = cancelled_outcome(self._drain, preq.notes)
            raise
        finally:
            if tap.error_type is not None and outcome.status == 200:
                outcome.status, outcome.error_type = 500, tap.error_type
            outcome.usage = tap.usage
            if not tap.final_usage_seen:
                # Cut before its final usage frame: bill at least what was streamed.
                output, floored = billed_output_tokens(None, tap.delta_chars)
                if floored and output > outcome.usage.get("output_tokens", 0):
                    outcome.usage = {**outcome.usage, "output_tokens": output}
                    preq.notes.append(FLOOR_NOTE)
            if self._cancel_scope is None or self._cancel_scope.cancel_called:
                with anyio.CancelScope(shield=True):  # cancelled (or not ours to stop): let nothing cut it
                    await self._end()
            else:  # not cancelled: stop the listener from cancelling instead of a shielded scope
                self._ending = True
                await self._end()
            self._ended = True

    async def _end(self) -> None:
        """Record the outcome, then release the upstream. Called where nothing can cancel it: inside a
        shielded scope, or (a stream that ended normally) with the disconnect listener stood down."""
        assert self._record is not None, "a Relay was returned without recording(...)"
        self._record()
        try:
            await self._source.aclose()
        finally:
            await self._close()
