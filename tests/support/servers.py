"""Run an ASGI app on 127.0.0.1 in a background thread, for tests that need a real socket.

Used for the proxy itself (driven by the real Claude Code CLI or the ``anthropic`` SDK) and for
the fake upstreams. The server binds port 0, so parallel tests never collide.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn


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
