"""The quotas' local books (no I/O): usage not yet written, leases held, and reservations.

- ``PendingUsage``: this replica's usage recorded but not yet written to the buckets (the
  recorder calls ``add(event)`` when it queues an event and ``discard(events)`` once they are written).
- ``Lease``: the slice of one shared counter (app/store/leases.py) this replica holds: ``n`` units
  granted to it in the store, ``spent`` units reserved or used from it, ``cap`` what it may spend
  locally (``n``, or the whole limit while the store is failing).
- ``Reservation``: what one request took from its leases at admission (an estimate per limit); the
  Forwarder's ``finish`` settles it once with the real usage, or it is released (the estimate given back).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from app.records.buckets import Granularity, floor, next_start
from app.records.events import UsageEvent
from app.usage.limits import Metric


class WindowStarts:
    """The UTC ``minute``, ``day`` and ``month`` windows containing an instant, as ``{granularity:
    (start, end)}`` (aware datetimes), computed once per minute: every instant of a minute lies in
    the same day and month, so ``of(t)`` for a ``t`` in the minute last computed returns the same
    dict (do not change it). The quota path asks for these per claim and per usage event; ``floor``
    and ``next_start`` on every call were a tenth of its cost (issue 16). Raises ValueError for a
    naive ``t`` (``floor``)."""

    WINDOWS: tuple[Granularity, ...] = ("minute", "day", "month")
    __slots__ = ("_from", "_until", "_windows")

    def __init__(self) -> None:
        self._from: datetime | None = None
        self._until: datetime | None = None
        self._windows: dict[Granularity, tuple[datetime, datetime]] = {}

    def of(self, t: datetime) -> dict[Granularity, tuple[datetime, datetime]]:
        if self._from is not None and self._until is not None and t.tzinfo is not None \
                and self._from <= t < self._until:
            return self._windows
        windows: dict[Granularity, tuple[datetime, datetime]] = {}
        for g in self.WINDOWS:
            start = floor(t, g)
            windows[g] = (start, next_start(start, g))
        self._from, self._until = windows["minute"]
        self._windows = windows
        return windows


class PendingUsage:
    """This replica's usage recorded but not yet written to the buckets, per scope and window
    (minute, day, month; UTC)."""

    WINDOWS: tuple[Granularity, ...] = ("minute", "day", "month")

    def __init__(self) -> None:
        self._totals: dict[tuple[str, str, str, datetime], list[int]] = {}
        self._windows = WindowStarts()

    def _keys(self, event: UsageEvent) -> list[tuple[str, str, str, datetime]]:
        t = event.time if event.time.tzinfo else event.time.replace(tzinfo=UTC)
        windows = self._windows.of(t)
        scopes = [(s, i) for s, i in (("key", event.access_key_id), ("user", event.user_id)) if i]
        return [(scope, scope_id, g, windows[g][0]) for scope, scope_id in scopes for g in PendingUsage.WINDOWS]

    def add(self, event: UsageEvent) -> None:
        for key in self._keys(event):
            total = self._totals.setdefault(key, [0, 0])
            total[0] += event.total_tokens
            total[1] += event.cost_usd_micros or 0

    def discard(self, events: Sequence[UsageEvent]) -> None:
        for event in events:
            for key in self._keys(event):
                total = self._totals.get(key)
                if total is None:
                    continue
                total[0] -= event.total_tokens
                total[1] -= event.cost_usd_micros or 0
                if total[0] <= 0 and total[1] <= 0:
                    del self._totals[key]

    def get(self, scope: str, scope_id: str, granularity: str, start: datetime) -> tuple[int, int]:
        """``(tokens, cost_usd_micros)`` pending for one window."""
        total = self._totals.get((scope, scope_id, granularity, start))
        return (total[0], total[1]) if total else (0, 0)


@dataclass(eq=False, slots=True)
class Lease:
    """This replica's slice of one counter (units: requests, tokens or micro-USD).

    ``n``: granted to this replica in the store; ``spent``: reserved (estimates) plus settled
    corrections, counted since the lease began (can pass ``n`` when requests used more than their
    estimate); ``reported``: the ``spent`` last written to the store; ``cap``: local spending limit;
    ``until``: after it the lease must be renewed in the store before more is spent; ``closed``:
    given back, so later corrections go to ``late`` (the book sends them as store adjustments).
    """

    counter_id: str
    limit: int
    window_end: datetime
    until: datetime
    n: int = 0
    spent: int = 0
    reported: int = 0
    cap: int = 0
    hint: int | None = None  # units left in the whole counter after our last grant (None: unknown)
    ensured: bool = False  # the store counter is known to exist
    closed: bool = False
    late: dict[str, int] = field(default_factory=dict)  # the book's pending adjustments, shared

    def usable(self, now: datetime, limit: int) -> bool:
        return not self.closed and self.limit == limit and now < self.until and now < self.window_end

    def try_spend(self, amount: int, now: datetime, limit: int) -> bool:
        if self.usable(now, limit) and self.spent + amount <= self.cap:
            self.spent += amount
            return True
        return False

    def correct(self, delta: int) -> None:
        """Change ``spent`` by ``delta`` (actual - estimate, or -estimate for a release)."""
        if not delta:
            return
        if self.closed:
            self.late[self.counter_id] = self.late.get(self.counter_id, 0) + delta
        else:
            self.spent += delta


class Spendable(Protocol):
    """What a reservation part corrects: a ``Lease``, or a wrapper that forwards to one."""

    def correct(self, delta: int) -> None: ...


@dataclass(slots=True)
class _Part:
    lease: Spendable
    amount: int
    metric: Metric


class Reservation:
    """One admitted request's estimates, one part per limit counter. ``settle(event)`` replaces
    each estimate by the event's real usage (tokens; cost in micro-USD via ``cost(event)``; a
    request counts 1); ``release()`` gives the token and cost estimates back (the request never
    reached an upstream, or was refused). Either happens at most once; later calls do nothing."""

    __slots__ = ("_cost", "_parts", "done")

    def __init__(self, cost: Callable[[UsageEvent], int]) -> None:
        self._cost = cost
        self._parts: list[_Part] = []
        self.done = False

    def add(self, lease: Spendable, amount: int, metric: Metric) -> None:
        self._parts.append(_Part(lease, amount, metric))

    def settle(self, event: UsageEvent) -> None:
        if self.done:
            return
        self.done = True
        tokens = event.total_tokens
        cost = self._cost(event) if any(p.metric == "cost" for p in self._parts) else 0
        for part in self._parts:
            actual = {"requests": part.amount, "tokens": tokens, "cost": cost}[part.metric]
            part.lease.correct(actual - part.amount)

    def release(self, *, requests_too: bool = False) -> None:
        """Give the estimates back; the request count stays (it was admitted) unless ``requests_too``."""
        if self.done:
            return
        self.done = True
        for part in self._parts:
            if part.metric != "requests" or requests_too:
                part.lease.correct(-part.amount)
