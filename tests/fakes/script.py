"""The reply script both fake servers share: replies queued by a test, each used once, taken by the
first request its predicate matches (FIFO among matches). Thread-safe: the fakes serve from a
background thread while the test thread enqueues."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

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
