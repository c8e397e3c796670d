"""The usage write path: never on the request path.

``record(event)`` puts the event on a bounded in-process queue and returns at once. A background
task drains it in batches (``batch_size`` events, or whatever arrived within ``flush_interval_s``
seconds) into the store. When the store fails, the batch is kept and retried with backoff (capped at
30 s) until it lands; ``aclose()`` (graceful shutdown) flushes everything still queued. Writes are
idempotent per event id, so a retried batch never double counts.

Guarantee: an event is lost only if the process dies before it is written, or if the queue
(``queue_max`` events) overflows during a long store outage; both are counted in metrics and logs.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence

from app.usage.events import UsageEvent

log = logging.getLogger(__name__)

BatchWriter = Callable[[Sequence[UsageEvent]], Awaitable[None]]
MAX_BACKOFF_S = 30.0


class UsageRecorder:
    """Bounded queue + batching writer. ``write_batch`` must be idempotent per event id."""

    def __init__(self, write_batch: BatchWriter, *, batch_size: int = 500,
                 flush_interval_s: float = 1.0, queue_max: int = 100_000) -> None:
        self._write_batch = write_batch
        self._batch_size = batch_size
        self._flush_interval_s = flush_interval_s
        self._queue: deque[UsageEvent] = deque()
        self._queue_max = queue_max
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.dropped = 0
        self.write_failures = 0
        self.written = 0

    @property
    def depth(self) -> int:
        """Events waiting to be written."""
        return len(self._queue)

    def record(self, event: UsageEvent) -> None:
        """Queue an event; never blocks, never raises."""
        if len(self._queue) >= self._queue_max:
            self.dropped += 1
            log.error("usage queue full (%d events); dropping event %s", self._queue_max, event.event_id)
            return
        self._queue.append(event)
        if len(self._queue) >= self._batch_size:
            self._wakeup.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="usage-recorder")

    async def flush(self) -> None:
        """Write everything queued now (retrying on failure until it lands)."""
        backoff = 0.1
        while self._queue:
            batch = [self._queue[i] for i in range(min(self._batch_size, len(self._queue)))]
            try:
                await self._write_batch(batch)
            except Exception as exc:  # noqa: BLE001 - any store failure: keep the batch, retry
                self.write_failures += 1
                log.warning("usage write failed (%s); %d events queued, retrying in %.1fs",
                            type(exc).__name__, len(self._queue), backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
                continue
            for _ in batch:
                self._queue.popleft()
            self.written += len(batch)
            backoff = 0.1

    async def _run(self) -> None:
        while not self._closing:
            try:
                await asyncio.wait_for(self._wakeup.wait(), timeout=self._flush_interval_s)
            except TimeoutError:
                pass
            self._wakeup.clear()
            await self.flush()

    async def aclose(self, timeout_s: float = 30.0) -> None:
        """Stop the timer and flush what is queued (bounded by ``timeout_s`` seconds)."""
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, timeout=timeout_s)
            except TimeoutError:
                log.error("usage flush timed out at shutdown; %d events not written", len(self._queue))
                self._task.cancel()
        else:
            await asyncio.wait_for(self.flush(), timeout=timeout_s)
