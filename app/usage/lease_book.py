"""This replica's leases on the shared quota counters: spend locally, go to the store only for a slice.

``reserve(counter_id, amount, limit=...)`` takes ``amount`` units from the local lease when it has
room (no I/O: the steady state); otherwise, holding the counter's lock so concurrent requests wait
for one store call instead of racing, it asks the store for a slice (app/store/leases.py ``take``):

- slice = max(what is missing, min(``slice_fraction`` x limit, a quarter of what the counter had
  left after our last grant)): big while far from the limit, one request's estimate close to it;
- refused (the slice would pass the limit) -> re-read the counter, reclaim leases of other replicas
  that expired more than ``lease_ttl_s`` ago, and retry with what is left; when less is left than
  the request needs, ``Refusal``.

A lease lasts ``lease_ttl_s`` (clock time). ``sync()`` (every ``sync_interval_s``, in the
background) writes each lease's spent count to the store when it changed, gives back the unused
part of leases past their time, and sends corrections that arrived after a lease closed. A crashed
replica's lease is reclaimed by the others ``lease_ttl_s`` after it expired: its unused part (granted
minus its last reported spent count) returns to the counter.

Store errors (or a call slower than ``store_timeout_s``) put the book in degraded mode for
``degraded_s`` seconds: leases are then spent locally up to what this replica last knew was left
(the whole limit if it knew nothing), nothing waits for the store, and the spending is written to
the counter when the store answers again (logged). Refusals never come from a store error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from app.store.leases import LeaseRepository
from app.tasks import Periodic
from app.usage.ledger import Lease

log = logging.getLogger(__name__)

T = TypeVar("T")
COUNTER_KEEP = timedelta(days=1)  # a counter document outlives its window by this (TTL index)


@dataclass(frozen=True, slots=True)
class Refusal:
    """Not enough left: ``used`` units used or reserved in the window, as far as this replica knows.
    ``window_ended``: nothing was refused on merit: the window ended while the request waited for
    its counter, so the caller claims again in the new window."""

    used: int
    window_ended: bool = False


WINDOW_ENDED = Refusal(0, window_ended=True)
WINDOW_RETRIES = 3  # claims made again by a caller when windows end while its request waits


class _CounterLocks:
    """One ``asyncio.Lock`` per counter id, kept only while a task holds or waits for it (counter
    ids carry their window, so a dict of locks would otherwise grow every minute)."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, list[int]]] = {}  # id -> (lock, [holders + waiters])

    @asynccontextmanager
    async def hold(self, counter_id: str) -> AsyncIterator[None]:
        entry = self._locks.get(counter_id)
        if entry is None:
            entry = self._locks[counter_id] = (asyncio.Lock(), [0])
        lock, users = entry
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if not users[0]:
                del self._locks[counter_id]

    def __len__(self) -> int:
        return len(self._locks)


class BookClock:
    """A mixin for the book's callers (QuotaAdmission, SpendAdmission): ``clock`` (public,
    replaceable; returns UTC now) is the ``book``'s clock, so the windows a caller computes and the
    leases' expiry read the same time."""

    book: LeaseBook

    @property
    def clock(self) -> Callable[[], datetime]:
        return self.book.clock

    @clock.setter
    def clock(self, clock: Callable[[], datetime]) -> None:
        self.book.clock = clock


class LeaseBook:
    """Local leases of one replica (``holder``: a random id per process). See the module docstring."""

    def __init__(self, repo: LeaseRepository, *, clock: Callable[[], datetime] | None = None, holder: str | None = None,
                 lease_ttl_s: float = 30.0, slice_fraction: float = 0.1, sync_interval_s: float = 1.0,
                 store_timeout_s: float = 1.0, degraded_s: float = 10.0) -> None:
        self._repo = repo
        self.clock = clock or (lambda: datetime.now(UTC))
        self.holder = holder or uuid.uuid4().hex[:16]
        self._ttl = timedelta(seconds=lease_ttl_s)
        self._slice_fraction = slice_fraction
        self._store_timeout_s = store_timeout_s
        self._degraded_s = degraded_s
        self._degraded_until = 0.0  # time.monotonic()
        self._leases: dict[str, Lease] = {}
        self._locks = _CounterLocks()
        self._late: dict[str, int] = {}  # counter id -> units to add (settled after the lease closed)
        self._expiry: dict[str, datetime] = {}  # counter id -> its expires_at (for late adjustments)
        self._syncer = Periodic("quota-lease-sync", sync_interval_s, self.sync)

    # --- the request path ----------------------------------------------------------------------

    async def reserve(self, counter_id: str, amount: int, *, limit: int, window_end: datetime,
                      initial: Callable[[], Awaitable[int]] | None = None) -> Lease | Refusal:
        """Take ``amount`` units (<= ``limit``) of the counter for one request. ``initial`` gives
        the window's usage so far when the store counter must be created (day/month windows).
        Returns the lease spent from, a ``Refusal``, or ``WINDOW_ENDED`` when ``window_end`` passed
        before the counter could be reserved (the caller claims again in the new window)."""
        lease = self._leases.get(counter_id)
        if lease is not None and lease.try_spend(amount, self.clock(), limit):
            return lease
        async with self._locks.hold(counter_id):
            now = self.clock()
            lease = self._leases.get(counter_id)
            if lease is not None and lease.try_spend(amount, now, limit):
                return lease  # another request refilled it while we waited
            if lease is not None and now >= lease.window_end:
                self._drop(lease)
            if now >= window_end:
                return WINDOW_ENDED
            if not self.degraded:
                try:
                    return await self._call(self._grant(counter_id, amount, limit, window_end, initial, now))
                except Exception as exc:  # noqa: BLE001 - fail open: never block traffic on the store
                    self._degrade(exc)
            return self._spend_locally(counter_id, amount, limit, window_end, now)

    async def _grant(self, counter_id: str, amount: int, limit: int, window_end: datetime,
                     initial: Callable[[], Awaitable[int]] | None, now: datetime) -> Lease | Refusal:
        lease = self._leases.get(counter_id)
        if lease is not None and lease.limit != limit:
            await self._close(lease)  # the limit changed: give back what was taken under the old one
            lease = None
        if lease is None:
            lease = self._new_lease(counter_id, limit, window_end, now)
        if not lease.ensured and initial is not None and lease.n == 0:
            if await self._repo.read(counter_id) is None:
                await self._repo.create(counter_id, initial=await initial(), expires_at=window_end + COUNTER_KEEP)
            lease.ensured = True
        used = 0
        for _ in range(4):  # a few rounds of contention with other replicas, then refuse
            short = lease.spent + amount - lease.n
            want = max(short, self._slice(limit, lease.hint)) if short > 0 else 0
            sent = lease.spent
            doc = await self._repo.take(counter_id, holder=self.holder, amount=want, limit=limit, spent=sent,
                                        lease_until=now + self._ttl, expires_at=window_end + COUNTER_KEEP)
            if doc is not None:
                self._granted(lease, doc, want, sent, now)
                if lease.try_spend(amount, now, limit):
                    return lease
                continue
            doc = await self._repo.read(counter_id)
            if doc is None:
                continue  # created by another replica meanwhile: try again
            if await self._reclaim(counter_id, doc, now):
                continue
            granted = int(doc.get("granted", 0))
            used = granted - max(0, lease.n - lease.spent)
            if limit - granted < short:
                return Refusal(used)
            lease.hint = limit - granted  # the next slice is at most a quarter of this
        return Refusal(used)

    def _granted(self, lease: Lease, doc: dict[str, Any], want: int, sent: int, now: datetime) -> None:
        entry = (doc.get("leases") or {}).get(self.holder) or {}
        if int(entry.get("n", 0)) != lease.n + want:
            # Our lease had been reclaimed by another replica (we did not renew it in time): it
            # counted ``reported`` as spent; add what we spent beyond that, and start afresh.
            self._late[lease.counter_id] = self._late.get(lease.counter_id, 0) + sent - lease.reported
            lease.spent -= sent
        lease.n = int(entry.get("n", 0))
        lease.reported = sent
        lease.cap = lease.n
        lease.until = now + self._ttl
        lease.ensured = True
        lease.hint = lease.limit - int(doc.get("granted", 0))

    def _new_lease(self, counter_id: str, limit: int, window_end: datetime, now: datetime) -> Lease:
        self._expiry[counter_id] = window_end + COUNTER_KEEP
        lease = self._leases[counter_id] = Lease(counter_id, limit, window_end, until=now, late=self._late)
        return lease

    def _slice(self, limit: int, hint: int | None) -> int:
        size = math.ceil(limit * self._slice_fraction)
        if hint is not None:
            size = min(size, hint // 4)
        return max(1, size)

    async def _reclaim(self, counter_id: str, doc: dict[str, Any], now: datetime) -> bool:
        freed = False
        for holder, lease in (doc.get("leases") or {}).items():
            expiry = lease.get("e")
            if holder != self.holder and isinstance(expiry, datetime) and expiry + self._ttl < now:
                if await self._repo.reclaim(counter_id, holder, lease):
                    log.warning("reclaimed an expired quota lease of replica %s on %s (%d of %d units unspent)",
                                holder, counter_id, int(lease.get("n", 0)) - int(lease.get("s", 0)),
                                int(lease.get("n", 0)))
                    freed = True
        return freed

    def _spend_locally(self, counter_id: str, amount: int, limit: int, window_end: datetime,
                       now: datetime) -> Lease | Refusal:
        lease = self._leases.get(counter_id)
        if lease is None or lease.closed or lease.limit != limit:
            lease = self._new_lease(counter_id, limit, window_end, now)
        # What this replica last knew was left in the counter, plus its own slice.
        lease.cap = limit if lease.hint is None else lease.n + max(0, lease.hint)
        lease.until = now + timedelta(seconds=self._degraded_s)
        if lease.try_spend(amount, now, limit):
            return lease
        return Refusal(lease.spent + limit - lease.cap)

    # --- background ---------------------------------------------------------------------------

    async def sync(self) -> None:
        """Report changed spent counts, give back expired leases, send late corrections."""
        if self.degraded:
            return
        now = self.clock()
        try:
            for counter_id, lease in list(self._leases.items()):
                if now >= lease.window_end:
                    self._drop(lease)
                    continue
                async with self._locks.hold(counter_id):
                    if self._leases.get(counter_id) is not lease:
                        continue
                    if now >= lease.until:
                        await self._call(self._close(lease))
                    elif lease.n and lease.spent != lease.reported:
                        await self._call(self._report(lease))
            for counter_id in list(self._late):
                delta = self._late.pop(counter_id)
                if counter_id not in self._expiry:
                    continue  # its window ended: nothing left to correct
                try:
                    await self._call(self._repo.adjust(counter_id, delta, expires_at=self._expiry[counter_id]))
                except BaseException:
                    self._late[counter_id] = self._late.get(counter_id, 0) + delta
                    raise
        except Exception as exc:  # noqa: BLE001 - retried at the next sync
            self._degrade(exc)
        for counter_id in [c for c, t in self._expiry.items() if t - COUNTER_KEEP <= now and c not in self._late]:
            del self._expiry[counter_id]

    async def _report(self, lease: Lease) -> None:
        sent = lease.spent
        if await self._repo.report(lease.counter_id, holder=self.holder, spent=sent):
            lease.reported = sent
            return
        # Reclaimed by another replica (it counted ``reported``): correct, and start afresh.
        self._late[lease.counter_id] = self._late.get(lease.counter_id, 0) + sent - lease.reported
        lease.spent -= sent
        lease.n = lease.reported = lease.cap = 0

    async def _close(self, lease: Lease) -> None:
        """Give the lease back (unused part returned, overuse recorded). Corrections arriving
        after this go to the late adjustments."""
        lease.closed = True
        if self._leases.get(lease.counter_id) is lease:
            del self._leases[lease.counter_id]
        spent, n, reported = lease.spent, lease.n, lease.reported
        if not await self._repo.give_back(lease.counter_id, holder=self.holder, delta=spent - n):
            # Never granted (made while the store failed) or reclaimed (counted ``reported``).
            self._late[lease.counter_id] = self._late.get(lease.counter_id, 0) + spent - reported

    def _drop(self, lease: Lease) -> None:
        """The window is over: nothing to give back (its counter expires)."""
        lease.closed = True
        if self._leases.get(lease.counter_id) is lease:
            del self._leases[lease.counter_id]

    def start(self) -> None:
        self._syncer.start()

    async def aclose(self, timeout_s: float = 5.0) -> None:
        """Stop syncing and give every lease back (bounded by ``timeout_s``)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self._syncer.stop()
        for lease in list(self._leases.values()):
            lease.until = self.clock()  # so sync() closes it
        try:
            async with asyncio.timeout(timeout_s):
                await self.sync()
        except TimeoutError:
            log.warning("quota leases not given back at shutdown; other replicas reclaim them after expiry")

    # --- helpers ------------------------------------------------------------------------------

    def used(self, counter_id: str, doc: dict[str, Any] | None) -> int:
        """Units used or reserved in a counter read from the store: granted minus the unspent part
        of every lease (ours from this replica's own books)."""
        if doc is None:
            lease = self._leases.get(counter_id)
            return lease.spent if lease is not None else 0
        used = int(doc.get("granted", 0))
        for holder, entry in (doc.get("leases") or {}).items():
            if holder != self.holder:
                used -= int(entry.get("n", 0)) - int(entry.get("s", 0))
        lease = self._leases.get(counter_id)
        if lease is not None and self.holder in (doc.get("leases") or {}):
            used -= lease.n - lease.spent
        return used

    async def read(self, counter_id: str) -> dict[str, Any] | None:
        return await self._call(self._repo.read(counter_id))

    async def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        # ``asyncio.timeout``, not ``wait_for``: on Python 3.11 ``wait_for`` swallows a cancellation
        # that arrives as the call completes, and the sync loop then never stopped at shutdown.
        async with asyncio.timeout(self._store_timeout_s):
            return await coro

    @property
    def degraded(self) -> bool:
        """True while store calls are skipped after a failure (leases spent locally)."""
        return time.monotonic() < self._degraded_until

    def _degrade(self, exc: BaseException) -> None:
        self._degraded_until = time.monotonic() + self._degraded_s
        log.warning("quota store call failed (%s); counting locally for %.0fs", type(exc).__name__,
                    self._degraded_s)
