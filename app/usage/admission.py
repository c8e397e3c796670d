"""The quota check before a request is forwarded: reserve, refuse, and report (``QuotaAdmission``).

Every limit set on the request's access key and user (app/usage/limits.py) is a claim on one shared
counter per window (app/store/leases.py) through this replica's leases (app/usage/lease_book.py):
1 request, the request's estimated tokens, or its estimated cost (app/usage/estimate.py). The
request is admitted only if every claim fits: used + reserved + this estimate <= limit. Otherwise
``RateLimited`` (429 ``rate_limit_error``) naming the limit, with ``retry-after`` = seconds until
the window resets (and ``x-should-retry: false`` for day and month windows, which no retry of the
client's can outlast), and the claims already made are given back. The ``Reservation`` goes on the
request (``preq.reservation``); the Forwarder's ``finish`` settles it once with the real usage.

Bound (docs/usage.md "Quotas and rate limits"): a window's final usage <= limit + the usage of
requests beyond their own estimates (zero for ordinary requests, whose estimate is an upper bound),
with any number of replicas, because the store never grants more than the limit in total.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, NoReturn, Protocol

from app.errors import RateLimited
from app.store.usage_reads import UsageReader
from app.records.buckets import TOKEN_COUNTERS, Granularity, Scope, floor, next_start
from app.usage.estimate import Estimate, estimate_request, unpriced_cost_usd_micros
from app.records.events import UsageEvent
from app.usage.lease_book import WINDOW_RETRIES, BookClock, LeaseBook, Refusal
from app.usage.ledger import PendingUsage, Reservation, WindowStarts
from app.usage.limits import LIMITS, MICROS_PER_USD, UNIT, LimitSpec, effective_limits
from app.usage.pricing import PriceTable

if TYPE_CHECKING:
    from app.auth.access import Principal

class AdmissionRequest(Protocol):
    """What the check reads from a request (app/proxy/request.py's ``ProxyRequest`` is one): the
    endpoint, who it is for, its body (bytes) and parsed params; it sets ``reservation``."""

    endpoint: Literal["messages", "count_tokens"]
    principal: Principal
    body: bytes
    params: dict[str, Any]
    reservation: Reservation | None


SCOPE_LABEL = {"key": "access key", "user": "user"}
_PERIOD = {"minute": "this minute", "day": "today (UTC)", "month": "this month (UTC)"}


@dataclass(frozen=True, slots=True)
class Claim:
    """One limit of one scope for one request: ``amount`` and ``limit`` in the counter's units."""

    scope: Scope
    scope_id: str
    spec: LimitSpec
    limit_value: float  # as set (USD for cost)
    limit: int
    amount: int
    start: datetime
    end: datetime

    @property
    def counter_id(self) -> str:
        return f"{self.spec.metric}:{self.scope}:{self.scope_id}:{self.spec.window}:{_stamp(self.start)}"


_STAMPS: dict[datetime, str] = {}  # window start -> its counter id stamp; a handful of starts at a time


def _stamp(start: datetime) -> str:
    """``start`` as ``%Y%m%dT%H%M`` (the counter id's window part), formatted once per start:
    ``strftime`` per claim was the quota path's largest single cost (issue 16)."""
    stamp = _STAMPS.get(start)
    if stamp is None:
        if len(_STAMPS) >= 256:
            _STAMPS.clear()
        stamp = _STAMPS[start] = f"{start:%Y%m%dT%H%M}"
    return stamp


class _WindowEnded(Exception):
    """A claim's window ended before its counter could be reserved (internal to ``check``)."""


class QuotaAdmission(BookClock):
    """The Forwarder's ``Admission``: ``await check(preq)`` reserves or raises RateLimited.

    Only ``/v1/messages`` calls are checked (``count_tokens`` is free and unlimited here).
    ``clock`` (public, replaceable) returns the current UTC time; ``book`` holds the leases;
    ``pricing`` prices the estimates (None: every model at the reservation default price).
    """

    def __init__(self, usage: UsageReader, book: LeaseBook, pending: PendingUsage, *,
                 pricing: PriceTable | None = None, clock: Callable[[], datetime] | None = None,
                 store_timeout_s: float = 1.0, on_reject: Callable[[str, str], None] | None = None) -> None:
        self._usage, self.book, self._pending, self._pricing = usage, book, pending, pricing
        self._store_timeout_s = store_timeout_s
        self._on_reject = on_reject
        self.clock = clock or partial(datetime.now, UTC)
        self._windows = WindowStarts()

    def start(self) -> None:
        self.book.start()

    async def aclose(self) -> None:
        await self.book.aclose()

    @staticmethod
    def _scopes(principal: Principal) -> list[tuple[Scope, str, dict[str, float]]]:
        scopes: list[tuple[Scope, str, dict[str, float]]] = [
            ("key", principal.access_key_id, effective_limits(principal.key_limits)),
            ("user", principal.user_id, effective_limits(principal.user_limits))]
        return [s for s in scopes if s[1] and s[2]]

    def claims(self, preq: AdmissionRequest, now: datetime) -> list[Claim]:
        """Every claim the request makes (empty when no limit applies)."""
        out: list[Claim] = []
        estimate: Estimate | None = None
        windows = self._windows.of(now)
        for scope, scope_id, limits in self._scopes(preq.principal):
            for name, value in limits.items():
                spec = LIMITS[name]
                if spec.metric != "requests" and estimate is None:
                    estimate = estimate_request(preq.body, preq.params, self._pricing)
                amount = {"requests": 1, "tokens": estimate.tokens if estimate else 0,
                          "cost": estimate.cost_usd_micros if estimate else 0}[spec.metric]
                start, end = windows[spec.window]
                out.append(Claim(scope, scope_id, spec, value, spec.units(value), amount, start, end))
        return out

    async def check(self, preq: AdmissionRequest) -> None:
        """Reserve the request's claims on ``preq.reservation``, or raise RateLimited (429)."""
        if preq.endpoint != "messages":
            return
        for attempt in range(1, WINDOW_RETRIES + 1):
            now = self.clock()
            claims = self.claims(preq, now)
            if not claims:
                return
            reservation = Reservation(self._cost)
            try:
                for claim in claims:
                    if claim.amount > claim.limit:
                        self._reject(claim, now, None)
                    result = await self.book.reserve(claim.counter_id, claim.amount, limit=claim.limit,
                                                     window_end=claim.end, initial=self._initial(claim))
                    if isinstance(result, Refusal):
                        if (result.window_ended or self.clock() >= claim.end) and attempt < WINDOW_RETRIES:
                            # The window ended while this request waited for its counter: it
                            # belongs to the next window, so claim again there.
                            raise _WindowEnded
                        self._reject(claim, now, result.used)
                    reservation.add(result, claim.amount, claim.spec.metric)
            except _WindowEnded:
                reservation.release(requests_too=True)
                continue
            except BaseException:
                reservation.release(requests_too=True)
                raise
            preq.reservation = reservation
            return

    @staticmethod
    def _cost(event: UsageEvent) -> int:
        return event.cost_usd_micros if event.cost_usd_micros is not None else unpriced_cost_usd_micros(event)

    def _initial(self, claim: Claim) -> Callable[[], Awaitable[int]] | None:
        """The window's recorded usage, for a counter created mid-window (day and month windows;
        requests and minute windows start at 0)."""
        if claim.spec.metric == "requests" or claim.spec.window == "minute":
            return None

        async def initial() -> int:
            used = await self._window_usage(claim.scope, claim.scope_id, {claim.spec.window}, claim.start)
            return used[claim.spec.window][claim.spec.metric]
        return initial

    def _reject(self, claim: Claim, now: datetime, used: int | None) -> NoReturn:
        retry_after_s = max(1.0, (claim.end - now).total_seconds())
        spec, limit = claim.spec, claim.limit_value
        if used is None:
            what = (f"${claim.amount / MICROS_PER_USD:.4f}" if spec.metric == "cost"
                    else f"{claim.amount} tokens (input estimate + max_tokens)")
            reason = f"this request may use up to {what}, more than the whole limit"
        elif spec.metric == "cost":
            reason = f"${used / MICROS_PER_USD:.2f} of ${limit:.2f} used or reserved {_PERIOD[spec.window]}"
        elif spec.metric == "tokens":
            reason = (f"{used} of {int(limit)} tokens used or reserved {_PERIOD[spec.window]}; "
                      f"this request may use up to {claim.amount}")
        else:
            reason = f"at most {int(limit)} requests {_PERIOD[spec.window]}"
        if self._on_reject is not None:
            self._on_reject(claim.scope, spec.name)
        raise RateLimited(
            f"{SCOPE_LABEL[claim.scope]} {claim.scope_id}: {spec.name} limit reached ({reason}); "
            f"resets at {claim.end.isoformat().replace('+00:00', 'Z')}, retry after {math.ceil(retry_after_s)} s",
            retry_after_s=retry_after_s, should_retry=spec.window == "minute")

    # --- reporting (GET /v1/usage/me) --------------------------------------------------------

    async def status(self, principal: Principal) -> dict[str, dict[str, dict[str, Any]]]:
        """Current use of every limit set on the key and the user:
        ``{"access_key"|"user": {limit_name: {"limit", "used", "remaining", "unit", "resets_at"}}}``
        (cost in USD). Tokens and cost: recorded usage (buckets + this replica's unwritten events);
        requests: the shared counter. Does not count as a request; store errors report 0."""
        now = self.clock()
        out: dict[str, dict[str, dict[str, Any]]] = {}
        for scope, scope_id, limits in self._scopes(principal):
            windows = {LIMITS[n].window for n in limits}
            used = await self._window_usage(scope, scope_id, windows, now)
            rows = {}
            for name, limit in limits.items():
                spec = LIMITS[name]
                start = floor(now, spec.window)
                value: float = used[spec.window][spec.metric]
                if spec.metric == "requests":
                    counter_id = Claim(scope, scope_id, spec, limit, 0, 0, start, start).counter_id
                    value = self.book.used(counter_id, await self._read(counter_id))
                elif spec.metric == "cost":
                    value = value / MICROS_PER_USD
                rows[name] = {"limit": limit, "used": value, "remaining": max(0, limit - value),
                              "unit": UNIT[spec.metric], "resets_at": next_start(start, spec.window).isoformat()}
            out["access_key" if scope == "key" else "user"] = rows
        return out

    async def _read(self, counter_id: str) -> dict[str, Any] | None:
        try:
            return await self.book.read(counter_id)
        except Exception:  # noqa: BLE001 - a report falls back to this replica's own count
            return None

    async def _window_usage(self, scope: Scope, scope_id: str, windows: set[Granularity],
                            now: datetime) -> dict[str, dict[str, int]]:
        """Recorded usage per window: the buckets (shared) + this replica's unwritten events."""
        starts = {g: floor(now, g) for g in sorted(windows)}
        try:
            async with asyncio.timeout(self._store_timeout_s):
                stored = await self._usage.window_totals(scope, scope_id, tuple(starts.items()))
        except Exception:  # noqa: BLE001 - fail open: a missing read counts as no usage
            stored = {}
        out: dict[str, dict[str, int]] = {}
        for g, start in starts.items():
            counters = stored.get((g, start), {})
            pending_tokens, pending_cost = self._pending.get(scope, scope_id, g, start)
            out[g] = {"tokens": sum(int(counters.get(n, 0)) for n in TOKEN_COUNTERS) + pending_tokens,
                      "cost": int(counters.get("cost_usd_micros", 0)) + pending_cost, "requests": 0}
        return out
