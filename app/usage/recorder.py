"""The usage write path: never on the request path, never jammed by one event.

``record(event)`` sanitises the event (app/usage/sanitize.py: storable strings, clamped counts),
prices it (``cost_usd_micros``), shows it to the observers (metrics), puts it on a bounded
in-process queue and returns at once. A background task drains the queue in fixed batches
(``batch_size`` events, or whatever arrived within ``flush_interval_s`` seconds).

Failures (classified in one place, ``app.store.errors.is_transient``):

- **transient** (the store is unreachable, times out, fails over...): the *same* batch is retried
  with backoff (0.1 s doubling, capped at ``max_backoff_s``) until it lands, while new events keep
  queuing. ``write_batch`` must be idempotent per batch (``UsageWriter.write_batch`` is: see
  app/store/usage.py), so a retried batch never double counts.
- **not transient** (the data: an event BSON cannot encode, a document the server refuses): the
  batch is split in halves, each written as its own batch, recursively, until the bad event is
  alone; it then goes to ``dead_letter(event, reason)`` (the ``usage_dead_letter`` collection) and
  is counted (``dead_lettered``); every other event is written. A writer that knows which events it
  could not store raises ``UnwrittenEvents`` (app/store/errors.py) and only those are split (or
  dead-lettered at once when it found each one bad on its own). A writer raising any other
  non-transient error must have written none of the batch.

Every ``sweep_interval_s`` seconds the task also calls ``sweep()`` (finish batches a crashed
process left half-folded). The ``ledger`` (quotas' view of not-yet-written usage) sees each queued
event on ``add`` and each written or dead-lettered group on ``discard``.

Guarantee: an event is lost only if the process dies before its batch is inserted, if the queue
(``queue_max`` events) overflows during a long store outage, or if shutdown's flush times out; all
are counted (``dropped``) or logged. A dead-lettered event is kept in the dead-letter collection,
not in the buckets.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from app.records.events import UsageEvent
from app.store.errors import UnwrittenEvents, describe, is_transient
from app.tasks import Periodic
from app.usage.sanitize import clean_cost, sanitize_event

log = logging.getLogger(__name__)

BatchWriter = Callable[[Sequence[UsageEvent]], Awaitable[None]]
Pricer = Callable[[UsageEvent], "int | None"]
Observer = Callable[[UsageEvent], None]
DeadLetter = Callable[[UsageEvent, str], Awaitable[None]]
MAX_BACKOFF_S = 30.0
FIRST_BACKOFF_S = 0.1


class Ledger(Protocol):
    """Usage recorded but not yet in the store (see app/usage/ledger.py PendingUsage)."""

    def add(self, event: UsageEvent) -> None: ...

    def discard(self, events: Sequence[UsageEvent]) -> None: ...


class UsageRecorder:
    """Bounded queue + batching writer. ``write_batch`` must be idempotent for a retried batch.

    Counters (for metrics): ``depth`` (queued + in flight), ``dropped``, ``write_failures``
    (failed attempts, transient or not), ``written`` (events stored), ``dead_lettered`` (events
    isolated as unstorable), ``sanitized`` (events with at least one field cleaned at ``record``).
    """

    def __init__(self, write_batch: BatchWriter, *, batch_size: int = 500, flush_interval_s: float = 1.0,
                 queue_max: int = 100_000, max_backoff_s: float = MAX_BACKOFF_S, price: Pricer | None = None,
                 observers: Sequence[Observer] = (), ledger: Ledger | None = None,
                 sweep: Callable[[], Awaitable[int]] | None = None, sweep_interval_s: float = 300.0,
                 dead_letter: DeadLetter | None = None) -> None:
        self._write_batch = write_batch
        self._batch_size = batch_size
        self._queue: deque[UsageEvent] = deque()
        self._inflight: list[UsageEvent] = []
        self._inflight_left = 0  # events of the batch in flight not yet written or dead-lettered
        self._dead_letter = dead_letter
        self._queue_max = queue_max
        self._max_backoff_s = max_backoff_s
        self._price = price
        self._observers = tuple(observers)
        self._ledger = ledger
        self._sweep = sweep
        self._sweep_interval_s = sweep_interval_s
        self._next_sweep = 0.0  # monotonic seconds; 0 = at the first tick
        self._flush_lock = asyncio.Lock()
        self._flusher = Periodic("usage-recorder", flush_interval_s, self._tick)
        self._closing = False
        self.dropped = 0
        self.write_failures = 0
        self.written = 0
        self.dead_lettered = 0
        self.sanitized = 0

    @property
    def depth(self) -> int:
        """Events waiting to be written (queued plus the batch in flight)."""
        return len(self._queue) + self._inflight_left

    def record(self, event: UsageEvent) -> None:
        """Sanitise, price, observe and queue an event; never blocks, never raises."""
        try:
            fixed = sanitize_event(event)
        except Exception:
            log.exception("usage event could not be sanitised")
            fixed = ()
        if fixed:
            self.sanitized += 1
            log.warning("usage event %s: cleaned %s", event.event_id, ", ".join(fixed))
        try:
            if event.cost_usd_micros is None and self._price is not None:
                event.cost_usd_micros = clean_cost(self._price(event))
        except Exception:
            log.exception("pricing failed for event %s", event.event_id)
        for observe in self._observers:
            try:
                observe(event)
            except Exception:
                log.exception("usage observer failed")
        if self.depth >= self._queue_max:
            self.dropped += 1
            log.error("usage queue full (%d events); dropping event %s", self._queue_max, event.event_id)
            return
        self._queue.append(event)
        if self._ledger is not None:
            self._ledger.add(event)
        if len(self._queue) >= self._batch_size:
            self._flusher.wake()

    def start(self) -> None:
        self._flusher.start()

    async def flush(self) -> None:
        """Write everything queued now, one fixed batch at a time: transient failures are retried
        until the batch lands, data failures are isolated and dead-lettered (module docstring)."""
        async with self._flush_lock:
            while self._inflight or self._queue:
                if not self._inflight:
                    count = min(self._batch_size, len(self._queue))
                    self._inflight = [self._queue.popleft() for _ in range(count)]
                    self._inflight_left = count
                await self._write_isolating(self._inflight)
                self._inflight, self._inflight_left = [], 0

    async def _write_isolating(self, batch: list[UsageEvent]) -> None:
        parts = [batch]  # a stack: the left half of a split is written first
        backoff = FIRST_BACKOFF_S
        while parts:
            part = parts.pop()
            try:
                await self._write_batch(part)
            except Exception as exc:  # noqa: BLE001 - classified below; nothing escapes the writer task
                self.write_failures += 1
                if is_transient(exc):
                    log.warning("usage write failed (%s); %d events waiting, retrying in %.1fs",
                                describe(exc, 200), self.depth, backoff)
                    parts.append(part)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, self._max_backoff_s)
                    continue
                backoff = FIRST_BACKOFF_S
                if isinstance(exc, UnwrittenEvents):
                    unwritten = {id(e) for e in exc.events}
                    self._done([e for e in part if id(e) not in unwritten])
                    rejected = exc.rejected
                    isolated = exc.isolated or len(rejected) == 1
                else:
                    rejected = [(e, describe(exc)) for e in part]
                    isolated = len(part) == 1
                if isolated:
                    for event, reason in rejected:
                        await self._dead_letter_one(event, reason)
                else:
                    events = [e for e, _ in rejected]
                    half = len(events) // 2
                    log.warning("usage batch of %d events not writable (%s); splitting it", len(events),
                                describe(exc, 200))
                    parts += [events[half:], events[:half]]
                continue
            self._done(part)
            backoff = FIRST_BACKOFF_S

    def _done(self, events: Sequence[UsageEvent]) -> None:
        """``events`` are in the store: count them and release them from the quota ledger."""
        if not events:
            return
        self.written += len(events)
        self._inflight_left -= len(events)
        self._release(events)

    def _release(self, events: Sequence[UsageEvent]) -> None:
        if self._ledger is not None:
            try:
                self._ledger.discard(events)
            except Exception:
                log.exception("usage ledger discard failed")

    async def _dead_letter_one(self, event: UsageEvent, reason: str) -> None:
        """Store an unwritable event in the dead-letter collection (transient failures retried with
        backoff, like batches); if even that is impossible, log it and count it as dropped."""
        log.error("usage event %s dead-lettered: %s", ascii(event.event_id)[:80], reason)
        backoff = FIRST_BACKOFF_S
        stored = True
        while self._dead_letter is not None:
            try:
                await self._dead_letter(event, reason)
                break
            except Exception as exc:  # noqa: BLE001
                self.write_failures += 1
                if not is_transient(exc):
                    stored = False
                    log.error("usage event %s could not be dead-lettered (%s); dropped: %s",
                              ascii(event.event_id)[:80], describe(exc, 200), ascii(event)[:2000])
                    break
                log.warning("usage dead-letter write failed (%s); retrying in %.1fs", describe(exc, 200), backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff_s)
        else:
            log.error("no dead-letter store; usage event kept in this log line only: %s", ascii(event)[:2000])
        if stored:
            self.dead_lettered += 1
        else:
            self.dropped += 1
        self._inflight_left -= 1
        self._release([event])

    async def _tick(self) -> None:
        """One round of the background task (every ``flush_interval_s``, or when a batch is full):
        write what is queued, then sweep when one is due."""
        await self.flush()
        if self._sweep is not None and not self._closing and time.monotonic() >= self._next_sweep:
            self._next_sweep = time.monotonic() + self._sweep_interval_s
            try:
                await self._sweep()
            except Exception as exc:  # noqa: BLE001 - the sweep is retried next interval
                log.warning("usage sweep failed (%s)", type(exc).__name__)

    async def aclose(self, timeout_s: float = 30.0) -> None:
        """Stop the timer and flush what is queued (bounded by ``timeout_s`` seconds)."""
        self._closing = True
        try:
            async with asyncio.timeout(timeout_s):
                await self._flusher.stop(graceful=True)  # a round in progress ends; no new one starts
                await self.flush()
        except TimeoutError:
            log.error("usage flush timed out at shutdown; %d events not written", self.depth)
