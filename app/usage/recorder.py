"""The usage write path: never on the request path.

``record(event)`` prices the event (``cost_usd_micros``), shows it to the observers (metrics), puts
it on a bounded in-process queue and returns at once. A background task drains the queue in fixed
batches (``batch_size`` events, or whatever arrived within ``flush_interval_s`` seconds). When the
store fails, the *same* batch is retried with backoff (capped at ``max_backoff_s``) until it lands,
while new events keep queuing; ``aclose()`` (graceful shutdown) flushes everything still queued.
``write_batch`` must be idempotent per batch (``UsageRepository.write_batch`` is: see
app/store/usage.py), so a retried batch never double counts.

Every ``sweep_interval_s`` seconds the task also calls ``sweep()`` (finish batches a crashed
process left half-folded). The ``ledger`` (quotas' view of not-yet-written usage) sees each queued
event on ``add`` and each written batch on ``discard``.

Guarantee: an event is lost only if the process dies before its batch is inserted, or if the queue
(``queue_max`` events) overflows during a long store outage; both are counted (``dropped``) and logged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from app.usage.events import UsageEvent

log = logging.getLogger(__name__)

BatchWriter = Callable[[Sequence[UsageEvent]], Awaitable[None]]
Pricer = Callable[[UsageEvent], "int | None"]
Observer = Callable[[UsageEvent], None]
MAX_BACKOFF_S = 30.0


class Ledger(Protocol):
    """Usage recorded but not yet in the store (see app/usage/quotas.py PendingUsage)."""

    def add(self, event: UsageEvent) -> None: ...

    def discard(self, events: Sequence[UsageEvent]) -> None: ...


class UsageRecorder:
    """Bounded queue + batching writer. ``write_batch`` must be idempotent for a retried batch.

    Counters (for metrics): ``depth`` (queued + in flight), ``dropped``, ``write_failures``
    (failed attempts), ``written`` (events stored).
    """

    def __init__(self, write_batch: BatchWriter, *, batch_size: int = 500, flush_interval_s: float = 1.0,
                 queue_max: int = 100_000, max_backoff_s: float = MAX_BACKOFF_S, price: Pricer | None = None,
                 observers: Sequence[Observer] = (), ledger: Ledger | None = None,
                 sweep: Callable[[], Awaitable[int]] | None = None, sweep_interval_s: float = 300.0) -> None:
        self._write_batch = write_batch
        self._batch_size = batch_size
        self._flush_interval_s = flush_interval_s
        self._queue: deque[UsageEvent] = deque()
        self._inflight: list[UsageEvent] = []
        self._queue_max = queue_max
        self._max_backoff_s = max_backoff_s
        self._price = price
        self._observers = tuple(observers)
        self._ledger = ledger
        self._sweep = sweep
        self._sweep_interval_s = sweep_interval_s
        self._next_sweep = 0.0  # monotonic seconds; 0 = at the first tick
        self._wakeup = asyncio.Event()
        self._flush_lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.dropped = 0
        self.write_failures = 0
        self.written = 0

    @property
    def depth(self) -> int:
        """Events waiting to be written (queued plus the batch in flight)."""
        return len(self._queue) + len(self._inflight)

    def record(self, event: UsageEvent) -> None:
        """Price, observe and queue an event; never blocks, never raises."""
        try:
            if event.cost_usd_micros is None and self._price is not None:
                event.cost_usd_micros = self._price(event)
        except Exception:  # noqa: BLE001 - a pricing bug must not lose the event
            log.exception("pricing failed for event %s", event.event_id)
        for observe in self._observers:
            try:
                observe(event)
            except Exception:  # noqa: BLE001 - metrics must never break the request path
                log.exception("usage observer failed")
        if self.depth >= self._queue_max:
            self.dropped += 1
            log.error("usage queue full (%d events); dropping event %s", self._queue_max, event.event_id)
            return
        self._queue.append(event)
        if self._ledger is not None:
            self._ledger.add(event)
        if len(self._queue) >= self._batch_size:
            self._wakeup.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="usage-recorder")

    async def flush(self) -> None:
        """Write everything queued now, one fixed batch at a time, retrying each until it lands."""
        async with self._flush_lock:
            backoff = 0.1
            while self._inflight or self._queue:
                if not self._inflight:
                    count = min(self._batch_size, len(self._queue))
                    self._inflight = [self._queue.popleft() for _ in range(count)]
                try:
                    await self._write_batch(self._inflight)
                except Exception as exc:  # noqa: BLE001 - any store failure: keep the batch, retry it
                    self.write_failures += 1
                    log.warning("usage write failed (%s); %d events waiting, retrying in %.1fs",
                                type(exc).__name__, self.depth, backoff)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, self._max_backoff_s)
                    continue
                batch, self._inflight = self._inflight, []
                self.written += len(batch)
                if self._ledger is not None:
                    self._ledger.discard(batch)
                backoff = 0.1

    async def _run(self) -> None:
        while not self._closing:
            try:
                await asyncio.wait_for(self._wakeup.wait(), timeout=self._flush_interval_s)
            except TimeoutError:
                pass
            self._wakeup.clear()
            await self.flush()
            if self._sweep is not None and not self._closing and time.monotonic() >= self._next_sweep:
                self._next_sweep = time.monotonic() + self._sweep_interval_s
                try:
                    await self._sweep()
                except Exception as exc:  # noqa: BLE001 - the sweep is retried next interval
                    log.warning("usage sweep failed (%s)", type(exc).__name__)
        await self.flush()

    async def aclose(self, timeout_s: float = 30.0) -> None:
        """Stop the timer and flush what is queued (bounded by ``timeout_s`` seconds)."""
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, timeout=timeout_s)
            except TimeoutError:
                log.error("usage flush timed out at shutdown; %d events not written", self.depth)
        else:
            try:
                await asyncio.wait_for(self.flush(), timeout=timeout_s)
            except TimeoutError:
                log.error("usage flush timed out at shutdown; %d events not written", self.depth)
