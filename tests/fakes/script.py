"""What both fake servers share: the reply script (replies queued by a test, each used once, taken by
the first request its predicate matches, FIFO among matches; thread-safe, since the fakes serve from a
background thread while the test thread enqueues) and the recorded request's accessors."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

Reply = TypeVar("Reply")
Request = TypeVar("Request")


class ReplyScript(Generic[Request, Reply]):
    """``add(replies, when)``, ``take(request) -> Reply | None``, ``clear()``, ``pending``."""

    def __init__(self) -> None:
        self._entries: list[tuple[Reply, Callable[[Request], bool]]] = []
        self._lock = threading.Lock()

    def add(self, replies: Iterable[Reply], when: Callable[[Request], bool]) -> None:
        with self._lock:
            self._entries += [(reply, when) for reply in replies]

    def take(self, request: Request) -> Reply | None:
        """The first queued reply whose predicate accepts ``request`` (removed), else None."""
        with self._lock:
            for index, (_, when) in enumerate(self._entries):
                if when(request):
                    return self._entries.pop(index)[0]
        return None

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    @property
    def pending(self) -> list[Reply]:
        """Replies not used yet, in order."""
        with self._lock:
            return [reply for reply, _ in self._entries]


class RecordedMixin:
    """``header(name)`` and ``json()`` for a recorded request with ``headers`` (lower-cased
    ``(name, value)`` pairs, in order) and ``body`` (the exact bytes)."""

    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        """First value of header ``name`` (case-insensitive), or None."""
        return next((v for k, v in self.headers if k == name.lower()), None)

    def json(self) -> Any:
        return json.loads(self.body)
