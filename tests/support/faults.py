"""Fault injection at the repository layer: wrap a repository so that, while its ``Outage`` is on,
every coroutine method raises what pymongo raises when MongoDB is unreachable (or hangs, for
timeouts). Plain attributes and sync methods pass through."""

from __future__ import annotations

import asyncio
import inspect
from collections import Counter
from typing import Any

from pymongo.errors import ServerSelectionTimeoutError


class Outage:
    """A switch shared by several wrapped repositories. ``mode``: ``"error"`` (raise at once) or
    ``"hang"`` (never answer, as a store that accepts the connection and then stalls)."""

    def __init__(self) -> None:
        self.down = False
        self.mode = "error"
        self.calls: Counter[str] = Counter()  # store calls attempted while down, by method name

    async def check(self, method: str = "") -> None:
        if not self.down:
            return
        self.calls[method] += 1
        if self.mode == "hang":
            await asyncio.sleep(3600)
        raise ServerSelectionTimeoutError("127.0.0.1:27017: [Errno 111] Connection refused, Timeout: 5.0s")


class Faulty:
    """``Faulty(repo, outage)`` behaves as ``repo`` until ``outage.down``."""

    def __init__(self, repo: Any, outage: Outage) -> None:
        self._repo, self._outage = repo, outage

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._repo, name)
        if not inspect.iscoroutinefunction(attr):
            return attr

        async def call(*args: Any, **kwargs: Any) -> Any:
            await self._outage.check(name)
            return await attr(*args, **kwargs)

        return call
