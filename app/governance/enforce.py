"""Spend limits enforced on ``/v1/messages`` (both key forms): reserve at admission, settle at the end.

Each cap that applies to the request (app/governance/resolve.py ``caps_for``) is a claim on one
shared counter per period (app/store/leases.py, through this module's own LeaseBook: the quotas'
mechanism, docs/usage.md "Quotas and rate limits"): ``spend:<user|group>:<id>:<period>:<start>``
in micro-USD. The claim is the request's cost estimate (app/usage/estimate.py, an upper bound). A
counter created mid-period starts at the recorded spend since the period began.

Admission: the estimate fits (used + reserved + estimate <= cap) -> admitted. It does not fit but
the counter is not full (used < cap) -> admitted with what is left as its reservation (a *partial*
reservation), so a user is never refused before reaching the cap; while a partial reservation is
in flight the counter counts as full on this replica (its request may cost its whole estimate), so
every admission sees the earlier requests at their real cost or at an upper bound: the final
spend is at most cap + one request's cost (per replica holding a partial reservation at the end).
Full (used >= cap) -> 429 ``billing_error`` "spend limit reached", plus the
admin's ``blocked_message``, ``x-should-retry: false`` and ``retry-after`` = seconds to the
period's reset. The reservation goes on ``preq.reservation`` (joined with the quotas' own when
both apply); ``Forwarder.finish`` settles it with the real cost once.

``count_tokens`` is exempt. Store errors: the lease book counts locally (fail open); with
``PROXY_SPEND_LIMITS_FAIL_CLOSED=true`` a request whose caps cannot be checked against the store
(tables never loaded or last reload failed, or the lease book degraded) gets 503
``overloaded_error`` instead.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING, Any, NoReturn

from app.errors import RateLimited, ServiceUnavailable
from app.governance.cache import GovernanceCache
from app.governance.periods import iso_z, period_end, period_start
from app.governance.resolve import Cap, caps_for
from app.usage.estimate import estimate_request, unpriced_cost_usd_micros
from app.records.events import UsageEvent
from app.usage.lease_book import WINDOW_RETRIES, BookClock, LeaseBook, Refusal
from app.usage.ledger import Reservation
from app.usage.pricing import PriceTable

if TYPE_CHECKING:
    from app.governance.alerts import AlertWatcher
    from app.proxy.request import ProxyRequest

FAIL_CLOSED_RETRY_AFTER_S = 5.0
PARTIAL_MAX_AGE_S = 1800.0  # a partial reservation never settled (a bug) stops blocking after this


class _PartialPart:
    """Stands for a lease in a Reservation part: forwards the settlement, then marks the counter's
    partial reservation done (Reservation only calls ``correct``)."""

    __slots__ = ("_done", "_lease")

    def __init__(self, lease: Any, done: Callable[[], object]) -> None:
        self._lease, self._done = lease, done

    def correct(self, delta: int) -> None:
        self._lease.correct(delta)
        self._done()


class SpendLimitReached(RateLimited):
    """429 ``billing_error``: the principal is over a spend cap until ``retry-after``. Never retried."""

    error_type = "billing_error"
    should_retry = False  # x-should-retry: false (app/errors.py): Claude Code stops at once


def counter_id(cap: Cap, start: datetime) -> str:
    kind, ident = cap.counter
    return f"spend:{kind}:{ident}:{cap.period}:{start:%Y%m%dT%H%M}"


def _cost(event: UsageEvent) -> int:
    return event.cost_usd_micros if event.cost_usd_micros is not None else unpriced_cost_usd_micros(event)


class SpendAdmission(BookClock):
    """``await check(preq)``: reserve the request's spend on every cap that applies, or raise
    SpendLimitReached (429) / ServiceUnavailable (503, fail-closed only). ``clock``: UTC now."""

    def __init__(self, cache: GovernanceCache, book: LeaseBook, *, pricing: PriceTable | None,
                 spend_of: Callable[[tuple[str, str], datetime, datetime], Awaitable[int]], tz: tzinfo = UTC,
                 fail_closed: bool = False, alerts: AlertWatcher | None = None,
                 clock: Callable[[], datetime] | None = None) -> None:
        self._cache, self.book, self._pricing, self._spend_of = cache, book, pricing, spend_of
        self._tz, self._fail_closed, self._alerts = tz, fail_closed, alerts
        self.clock = clock or (lambda: datetime.now(UTC))
        self.refused = 0  # requests refused over a cap (for tests and metrics)
        self._partial: dict[str, float] = {}  # counter id -> time.monotonic() of its partial reservation

    async def check(self, preq: ProxyRequest) -> None:
        if preq.endpoint != "messages":
            return
        principal = preq.principal
        caps = caps_for(self._cache.limits, principal.user_id, principal.groups)
        if self._fail_closed and (not self._cache.loaded or self._cache.stale):
            raise ServiceUnavailable("spend limits cannot be checked right now (the proxy's store is unreachable)",
                                     retry_after_s=FAIL_CLOSED_RETRY_AFTER_S)
        if not caps:
            return
        estimate = estimate_request(preq.body, preq.params, self._pricing).cost_usd_micros
        reservation = preq.reservation
        if reservation is None:
            # Set at once: if a later claim is refused, finish() still settles the parts taken.
            reservation = preq.reservation = Reservation(_cost)
        for cap in caps:
            for _ in range(WINDOW_RETRIES):
                if await self._claim(cap, estimate, reservation):
                    break  # else its period ended while the request waited for the counter: again
            else:
                raise ServiceUnavailable("spend limits could not be checked (the period kept ending); retry",
                                         retry_after_s=1.0)
            if self._fail_closed and self.book.degraded:
                raise ServiceUnavailable("spend limits cannot be checked right now (the proxy's store is "
                                         "unreachable)", retry_after_s=FAIL_CLOSED_RETRY_AFTER_S)

    async def _claim(self, cap: Cap, estimate: int, reservation: Reservation) -> bool:
        """Reserve ``estimate`` (micro-USD) on one cap's counter for the current period, or refuse
        (SpendLimitReached). False: the period ended before the counter could be reserved."""
        now = self.clock()
        start = period_start(now, cap.period, self._tz)
        end = period_end(start, cap.period, self._tz)
        cid, limit = counter_id(cap, start), cap.limit_usd_micros
        if self._alerts is not None:
            self._alerts.watch(cid, cap, start, end)
        if limit <= 0:
            self._refuse(cap, now, end, used=0)
        if self._partial_in_flight(cid):
            self._refuse(cap, now, end, used=limit)
        initial = self._initial(cap, start)
        amount = min(estimate, limit)
        result = await self.book.reserve(cid, amount, limit=limit, window_end=end, initial=initial)
        if isinstance(result, Refusal):
            if result.window_ended:
                return False
            if result.used >= limit or self._partial_in_flight(cid):
                self._refuse(cap, now, end, used=max(result.used, limit))
            amount = limit - result.used  # not full: what is left is this request's reservation
            self._partial[cid] = time.monotonic()
            result = await self.book.reserve(cid, amount, limit=limit, window_end=end, initial=initial)
            if isinstance(result, Refusal):
                self._partial.pop(cid, None)
                if result.window_ended:
                    return False
                self._refuse(cap, now, end, used=result.used)
            reservation.add(_PartialPart(result, functools.partial(self._partial.pop, cid, None)), amount, "cost")
        else:
            reservation.add(result, amount, "cost")
        return True

    def _partial_in_flight(self, cid: str) -> bool:
        since = self._partial.get(cid)
        if since is not None and time.monotonic() - since > PARTIAL_MAX_AGE_S:
            del self._partial[cid]
            return False
        return since is not None

    def _initial(self, cap: Cap, start: datetime) -> Callable[[], Awaitable[int]]:
        async def initial() -> int:
            return await self._spend_of(cap.counter, start, self.clock())
        return initial

    def _refuse(self, cap: Cap, now: datetime, end: datetime, *, used: int) -> NoReturn:
        self.refused += 1
        if self._alerts is not None:
            self._alerts.poke()
        retry_after_s = max(1.0, (end - now).total_seconds())
        whose = (f"user {cap.counter[1]}" if cap.counter[0] == "user"
                 else f"the shared budget of group {cap.counter[1]}")
        source = cap.source.get("type", "")
        detail = (f"{whose}: ${max(used, 0) / 1e6:.2f} of the ${cap.amount_cents / 100:.2f} {cap.period} cap "
                  f"(set on {source}) used or reserved; resets at {iso_z(end)}, "
                  f"in {math.ceil(retry_after_s)} s")
        message = f"spend limit reached: {detail}"
        if cap.blocked_message:
            message += f". {cap.blocked_message}"
        raise SpendLimitReached(message, retry_after_s=retry_after_s)


