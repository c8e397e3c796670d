"""What both fake servers (``anthropic_server.FakeAnthropic``, ``bedrock_server.FakeBedrock``) share:
the recorded requests, the reply script, the ``closing`` event, and serving on a real loopback
socket (``running``: a server kept for the whole test run, lent to a fresh fake each time)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send

from tests.fakes.script import ReplyScript
from tests.support.servers import shared_servers

Recorded = TypeVar("Recorded")
Reply = TypeVar("Reply")
Fake = TypeVar("Fake", bound="FakeServer[Any, Any]")


class FakeServer(Generic[Recorded, Reply]):
    """ASGI app over ``self._app`` (a Starlette app the subclass builds). ``requests``: every
    recorded request in arrival order; ``enqueue(*replies, when=...)`` scripts replies, each used
    once; ``closing`` is set on stop so stalled responses end; ``url`` once running."""

    default_when: Callable[[Any], bool] = staticmethod(lambda request: True)

    def __init__(self) -> None:
        self.url = ""
        self.requests: list[Recorded] = []
        self._script: ReplyScript[Recorded, Reply] = ReplyScript()
        self._lock = threading.Lock()
        self.closing = threading.Event()
        self._app: Starlette | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self._app is not None
        await self._app(scope, receive, send)

    def enqueue(self, *replies: Reply, when: Callable[[Recorded], bool] | None = None) -> None:
        """Script ``replies``, each used once, in order (FIFO), by requests matching ``when``."""
        self._script.add(replies, when or type(self).default_when)

    def reset(self) -> None:
        """Forget recorded requests and scripted replies."""
        with self._lock:
            self.requests.clear()
            self._script.clear()

    @property
    def pending(self) -> list[Reply]:
        """Scripted replies not used yet, in order."""
        return self._script.pending

    def _append(self, recorded: Recorded) -> None:
        with self._lock:
            self.requests.append(recorded)

    @classmethod
    @contextmanager
    def running(cls: type[Fake], **options: Any) -> Iterator[Fake]:
        """A ``cls(**options)`` served on 127.0.0.1; ``.url`` is its base URL (no trailing /).
        Each call makes a fresh fake (no state carries over); the server under it is kept."""
        fake = cls(**options)
        with shared_servers.lend(fake) as url:
            fake.url = url
            try:
                yield fake
            finally:
                fake.closing.set()  # let stalled responses end
