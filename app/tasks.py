"""``Periodic(name, interval_s, fn)``: one background task that awaits ``fn()`` every ``interval_s``
seconds, or at once after ``wake()``, for the app's loops (price refresh, the governance cache,
spend alerts, the usage recorder's flush).

- ``start()`` creates the task (needs a running event loop; a second call does nothing). The first
  round comes after one interval (or a ``wake()``): the owners load once themselves at start.
- ``fn`` raising ``Exception`` is logged (warning: the task's name and the exception's type, never
  its message or a stack trace, which can carry store URLs or request data) and the loop goes on.
- ``stop()`` cancels the task and waits for it; a round in progress is cancelled.
  ``stop(graceful=True)`` lets a round in progress finish and starts no new one (the usage recorder's
  last writes); bound it with ``asyncio.timeout`` (cancelling the caller cancels the round).
  After ``stop()``, ``start()`` starts a new task.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


class Periodic:
    def __init__(self, name: str, interval_s: float, fn: Callable[[], Awaitable[object]]) -> None:
        self.name, self.interval_s, self._fn = name, interval_s, fn
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._task = asyncio.get_running_loop().create_task(self._run(), name=self.name)

    def wake(self) -> None:
        """Run the next round now rather than at the end of the interval (no-op when stopped)."""
        self._wake.set()

    async def _run(self) -> None:
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval_s):
                    await self._wake.wait()
            self._wake.clear()
            if self._stopping:
                return
            try:
                await self._fn()
            except Exception as exc:  # noqa: BLE001 - a background loop never dies of one bad round
                log.warning("%s failed (%s); next try in %g s", self.name, type(exc).__name__, self.interval_s)

    async def stop(self, *, graceful: bool = False) -> None:
        """Stop the task and wait for it: cancel it, or (``graceful``) let the round in progress end."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping = True
        if graceful:
            self._wake.set()
            await task
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
