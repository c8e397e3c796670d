"""Run an ASGI app for tests: on 127.0.0.1 in a background thread (``serve_in_thread``), for tests
that need a real socket; on loopback servers kept for the whole run (``shared_servers.lend``), for
the fake upstreams; or in-process without a socket (``run_in_process``), for the proxy where the
socket is not what is tested.

Servers bind port 0, so parallel tests never collide.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import uvicorn
from starlette.testclient import TestClient


class _Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # pragma: no cover - threads cannot own signals
        pass


@contextmanager
def serve_in_thread(app: Any, *, startup_timeout_s: float = 20.0, port: int = 0, **config: Any) -> Iterator[str]:
    """Serve ``app`` on a free loopback port; yields the base URL ``http://127.0.0.1:<port>``.

    ``port``: a fixed port instead (for apps that must know their own URL before they start).
    Runs the app's lifespan (startup and graceful shutdown). Raises ``RuntimeError`` if the
    server does not start within ``startup_timeout_s`` seconds.
    """
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted connections only when the
    # listening socket's proto says TCP; with proto 0 every answer's body waited ~40 ms behind its
    # headers (Nagle against delayed ACK).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    port = sock.getsockname()[1]
    config.setdefault("log_level", "warning")
    config.setdefault("lifespan", "on")
    server = _Server(uvicorn.Config(app, **config))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


# --- loopback servers kept for the whole run ------------------------------------------------------

class _Slot:
    """The ASGI app a kept server serves: whichever app is lent the server now (``app``), else 503."""

    def __init__(self) -> None:
        self.app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        app = self.app
        if app is None:  # between two tests: nobody holds this server
            await send({"type": "http.response.start", "status": 503, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        await app(scope, receive, send)


class SharedServers:
    """Loopback servers started once and lent out, one app at a time: ``lend(app)`` costs no server
    start (~0.05 s) or stop (~0.2 s: uvicorn's 0.1 s ticks), which dominated tests that start a
    fresh fake upstream each. The app must not need a lifespan (the fakes do not)."""

    def __init__(self) -> None:
        self._idle: list[tuple[_Slot, str]] = []
        self._lock = threading.Lock()
        self._servers = ExitStack()

    @contextmanager
    def lend(self, app: Any) -> Iterator[str]:
        """Serve ``app`` on a kept server (a new one if all are lent); yields its base URL."""
        with self._lock:
            kept = self._idle.pop() if self._idle else None
        if kept is None:
            slot = _Slot()
            kept = slot, self._servers.enter_context(serve_in_thread(slot, lifespan="off"))
        kept[0].app = app
        try:
            yield kept[1]
        finally:
            kept[0].app = None
            with self._lock:
                self._idle.append(kept)

    def close(self) -> None:
        """Stop every kept server."""
        with self._lock:
            self._idle.clear()
        self._servers.close()


shared_servers = SharedServers()  # an empty pool; servers start on the first lend(), never at import


# --- the app in-process, without a socket ---------------------------------------------------------

class _InProcessClient(TestClient):
    """A TestClient that drops per-request ``timeout=`` (helpers shared with socket tests pass
    one): without a socket there is nothing to time out, and TestClient warns about it."""

    def request(self, *args: Any, timeout: Any = None, **kwargs: Any) -> Any:  # type: ignore[override]
        return super().request(*args, **kwargs)


@contextmanager
def run_in_process(app: Any) -> Iterator[Callable[..., TestClient]]:
    """Run ``app``'s lifespan on an event-loop thread; yields ``client(**options)``, a factory of
    sync clients (Starlette's ``TestClient``: an ``httpx2.Client``, so the ``anthropic`` SDK takes
    it as ``http_client=``) that call ``app`` in-process on that same loop, base URL
    ``http://testserver``. Responses stream (the body is handed over as the app sends it).

    Behaves as a server would: app exceptions become 500 answers (not raised into the test),
    redirects are not followed. Not for what only a socket shows: bytes and headers on the wire,
    client disconnects, keep-alive, server shutdown. Source: starlette.io/testclient/
    """
    with TestClient(app, raise_server_exceptions=False, follow_redirects=False) as owner:
        clients: list[TestClient] = []

        def client(**options: Any) -> TestClient:
            made = _InProcessClient(app, raise_server_exceptions=False, follow_redirects=False, **options)
            made.portal = owner.portal  # requests run on the lifespan's loop, next to the app's tasks
            clients.append(made)
            return made

        try:
            yield client
        finally:
            for made in clients:  # abort responses a test left open, before the lifespan ends
                made.close()
