"""Streams still open when the shutdown grace period ends: an SSE ``error`` for the client, and a
usage event that says ``shutdown``, instead of a dropped connection recorded as a 499.

uvicorn's graceful shutdown (``timeout_graceful_shutdown``) stops accepting, waits for open
responses, and when the grace period is over cancels their tasks; only then does the app's lifespan
exit run. A cancelled stream can send nothing more (Starlette's ``StreamingResponse`` runs it in an
anyio task group whose cancellation hits every later ``await``), and the lifespan hears of the
shutdown too late. So the server tells the app when shutdown *begins* (``DrainingServer``), and
``Drain`` ends the streams itself a little before uvicorn would (``margin_s``):

1. ``DrainingServer.shutdown`` -> ``Drain.begin(grace_s)``: schedules ``cut()`` at
   ``grace_s - min(margin_s, grace_s / 10)`` seconds.
2. ``cut()`` sets ``cutting`` and cancels the task of every proxy request whose SSE response has
   started and not ended (``DrainMiddleware`` keeps that set; no cost per chunk).
3. The relay (``relay.py``, for both providers) sees the cancellation with ``cutting`` set and
   record status 529 (``overloaded_error``), note ``shutdown``; ``DrainMiddleware`` catches the
   cancellation it caused, and ends the response with an SSE ``error`` event of type
   ``overloaded_error`` (Claude Code retries it against a replica that is up).

Requests whose response has not started are left to uvicorn, as before.
Source: uvicorn/server.py ``Server.shutdown`` (0.54), starlette/responses.py ``StreamingResponse``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import uvicorn

from app.errors import sse_error_event
from app.gc_tuning import freeze_startup_objects

log = logging.getLogger(__name__)

SHUTDOWN_NOTE = "shutdown"  # on the usage event of a stream cut by shutdown
SHUTDOWN_STATUS = 529
SHUTDOWN_ERROR_TYPE = "overloaded_error"
SHUTDOWN_MESSAGE = "the proxy is shutting down; retry the request"
CLIENT_CLOSED = 499  # nginx's convention: the client went away before the answer finished
_PROXY_PATH_MARKER = "/v1/messages"  # both key forms: /v1/messages... and /ak/{key}/v1/messages...


class Drain:
    """Shutdown as the relays see it. ``cutting``: True once open streams are being ended."""

    def __init__(self, *, margin_s: float = 1.0) -> None:
        self.margin_s = margin_s
        self.cutting = False
        self._streams: set[asyncio.Task[Any]] = set()
        self._timer: asyncio.TimerHandle | None = None

    @property
    def open_streams(self) -> int:
        return len(self._streams)

    def begin(self, grace_s: float | None) -> None:
        """The server stopped accepting and waits ``grace_s`` seconds (None: forever) for open
        responses. Call from the event loop; a second call does nothing."""
        if grace_s is None or self._timer is not None or self.cutting:
            return
        delay_s = max(0.0, grace_s - min(self.margin_s, grace_s / 10))
        self._timer = asyncio.get_running_loop().call_later(delay_s, self.cut)

    def cut(self) -> None:
        """End every open stream now (see the module doc)."""
        self.cutting = True
        if self._streams:
            log.warning("shutdown grace period ending: cutting %d open stream(s)", len(self._streams))
        for task in list(self._streams):
            task.cancel()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()


class DrainMiddleware:
    """Pure ASGI middleware for the proxy routes: tracks started SSE responses for ``Drain``, and
    ends a response cancelled by ``Drain.cut`` with an SSE ``error`` event."""

    def __init__(self, app: Any, drain: Drain) -> None:
        self.app, self.drain = app, drain

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or _PROXY_PATH_MARKER not in scope.get("path", ""):
            await self.app(scope, receive, send)
            return
        drain, task = self.drain, asyncio.current_task()
        assert task is not None
        open_stream = False

        async def tracking_send(message: dict[str, Any]) -> None:
            nonlocal open_stream
            if message["type"] == "http.response.start":
                content_type = dict(message.get("headers") or []).get(b"content-type", b"")
                if content_type.startswith(b"text/event-stream"):
                    open_stream = True
                    drain._streams.add(task)
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                open_stream = False
                drain._streams.discard(task)
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except asyncio.CancelledError:
            if not (drain.cutting and open_stream):
                raise
            task.uncancel()  # the cancellation was ours (Drain.cut): finish the response instead
            await send({"type": "http.response.body", "more_body": False,
                        "body": sse_error_event(SHUTDOWN_ERROR_TYPE, SHUTDOWN_MESSAGE)})
        finally:
            drain._streams.discard(task)


class DrainingServer(uvicorn.Server):
    """uvicorn's Server, telling ``drain`` when shutdown begins and how long the grace period is;
    once the app has started, it freezes the start-up objects out of the garbage collector's way
    (app/gc_tuning.py)."""

    def __init__(self, config: uvicorn.Config, drain: Drain) -> None:
        super().__init__(config)
        self.drain = drain

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets=sockets)
        freeze_startup_objects()  # after the lifespan start-up: see app/gc_tuning.py

    async def shutdown(self, sockets: Any = None) -> None:
        self.drain.begin(self.config.timeout_graceful_shutdown)
        await super().shutdown(sockets=sockets)


def cancelled_outcome(drain: Drain | None, notes: list[str]) -> tuple[int, str]:
    """``(status, error_type)`` for a relay that was cancelled: cut by shutdown (adds the
    ``shutdown`` note to ``notes``) or left by its client (499, nginx's convention)."""
    if drain is not None and drain.cutting:
        notes.append(SHUTDOWN_NOTE)
        return SHUTDOWN_STATUS, SHUTDOWN_ERROR_TYPE
    return CLIENT_CLOSED, "client_closed"
