"""Quotas and rate limits per access key and per user, checked before a request is forwarded.

Limits (``limits`` on the key or user document; every field optional):

==================== ===================================== ============================
field                 meaning                               window (UTC, fixed)
==================== ===================================== ============================
requests_per_minute   requests admitted                     the current minute
tokens_per_minute     tokens used (all four counters)       the current minute
tokens_per_day        tokens used                           the current UTC day
tokens_per_month      tokens used                           the current UTC month
cost_usd_per_day      cost in USD (priced requests only)    the current UTC day
cost_usd_per_month    cost in USD                           the current UTC month
==================== ===================================== ============================

Requests are counted when admitted, in a per-window MongoDB counter shared by all replicas
(app/store/limits.py). Tokens and cost are known only after a request ends, so a request is admitted
while the window's usage is *below* the limit (the request that crosses it completes; the next one is
refused). Usage = the usage buckets (exact, shared) + this replica's recorded-but-unwritten events
(``PendingUsage``); other replicas' unwritten events (about one flush interval) are not seen.
Over a limit -> ``RateLimited`` (429 ``rate_limit_error``) naming the limit, with ``retry-after``
= seconds until the window resets. If the store fails, checks fail open for ``degraded_s`` seconds
using this replica's own counts (logged), so a store outage never blocks traffic.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from cachetools import TTLCache

from app.errors import InvalidRequest, RateLimited
from app.store.limits import RateCounterRepository
from app.store.usage import UsageRepository
from app.usage.buckets import TOKEN_COUNTERS, Granularity, Scope, floor, next_start
from app.usage.events import UsageEvent

if TYPE_CHECKING:
    from app.auth.access import Principal
    from app.proxy.request import ProxyRequest

log = logging.getLogger(__name__)

Metric = Literal["requests", "tokens", "cost"]


@dataclass(frozen=True, slots=True)
class LimitSpec:
    name: str
    window: Granularity
    metric: Metric


LIMITS: dict[str, LimitSpec] = {spec.name: spec for spec in (
    LimitSpec("requests_per_minute", "minute", "requests"),
    LimitSpec("tokens_per_minute", "minute", "tokens"),
    LimitSpec("tokens_per_day", "day", "tokens"),
    LimitSpec("tokens_per_month", "month", "tokens"),
    LimitSpec("cost_usd_per_day", "day", "cost"),
    LimitSpec("cost_usd_per_month", "month", "cost"),
)}
MAX_LIMIT = 10**15
_SCOPE_LABEL = {"key": "access key", "user": "user"}
_UNIT = {"requests": "requests", "tokens": "tokens", "cost": "USD"}


def merge_limits(current: Mapping[str, Any] | None, patch: Mapping[str, Any] | None) -> dict[str, Any]:
    """Apply a PATCH ``limits`` object to the stored limits; returns the new limits.

    ``patch`` None clears every limit; a field set to None clears that limit. Counts
    (``requests_*``, ``tokens_*``) must be integers >= 1; ``cost_usd_*`` numbers > 0 (USD).
    Raises InvalidRequest (400) naming the bad field.
    """
    if patch is None:
        return {}
    if not isinstance(patch, Mapping):
        raise InvalidRequest("limits: expected an object or null")
    unknown = sorted(set(patch) - set(LIMITS))
    if unknown:
        raise InvalidRequest(f"limits: unknown field(s) {', '.join(unknown)}; allowed: {', '.join(LIMITS)}")
    merged = {k: v for k, v in (current or {}).items() if k in LIMITS}
    for name, value in patch.items():
        if value is None:
            merged.pop(name, None)
            continue
        spec = LIMITS[name]
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise InvalidRequest(f"limits.{name}: expected a number or null")
        if spec.metric == "cost":
            if not 0 < value <= MAX_LIMIT:
                raise InvalidRequest(f"limits.{name}: must be > 0 (USD)")
            merged[name] = float(value)
        else:
            if value != int(value) or not 1 <= value <= MAX_LIMIT:
                raise InvalidRequest(f"limits.{name}: must be a whole number >= 1")
            merged[name] = int(value)
    return merged


def effective_limits(raw: Mapping[str, Any] | None) -> dict[str, float]:
    """The usable limits in a stored ``limits`` object (unknown or invalid entries are ignored)."""
    out: dict[str, float] = {}
    for name, value in (raw or {}).items():
        if name in LIMITS and isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
            out[name] = value
    return out


def _tokens(counters: Mapping[str, int]) -> int:
    return sum(int(counters.get(name, 0)) for name in TOKEN_COUNTERS)


class PendingUsage:
    """This replica's usage recorded but not yet written to the buckets, per scope and window
    (minute, day, month; UTC). ``generation`` changes whenever a batch is written."""

    WINDOWS: tuple[Granularity, ...] = ("minute", "day", "month")

    def __init__(self) -> None:
        self._totals: dict[tuple[str, str, str, datetime], list[int]] = {}
        self.generation = 0

    @staticmethod
    def _keys(event: UsageEvent) -> list[tuple[str, str, str, datetime]]:
        t = event.time if event.time.tzinfo else event.time.replace(tzinfo=UTC)
        scopes = [(s, i) for s, i in (("key", event.access_key_id), ("user", event.user_id)) if i]
        return [(scope, scope_id, g, floor(t, g)) for scope, scope_id in scopes for g in PendingUsage.WINDOWS]

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
        self.generation += 1

    def get(self, scope: str, scope_id: str, granularity: str, start: datetime) -> tuple[int, int]:
        """``(tokens, cost_usd_micros)`` pending for one window."""
        total = self._totals.get((scope, scope_id, granularity, start))
        return (total[0], total[1]) if total else (0, 0)


@dataclass(frozen=True, slots=True)
class _Check:
    scope: Scope
    scope_id: str
    limits: dict[str, float]


class QuotaAdmission:
    """The Forwarder's ``Admission``: ``await check(preq)`` raises RateLimited when over a limit.

    Only ``/v1/messages`` calls are checked (``count_tokens`` is free and unlimited here).
    ``clock`` (public, replaceable) returns the current UTC time (inject it in tests);
    ``cache_ttl_s`` bounds how long a store read of window usage is reused (it is re-read at once
    after a batch is written); ``store_timeout_s`` bounds each store call on the request path.
    """

    def __init__(self, usage: UsageRepository, counters: RateCounterRepository, pending: PendingUsage, *,
                 clock: Callable[[], datetime] | None = None, cache_ttl_s: float = 1.0,
                 store_timeout_s: float = 1.0, degraded_s: float = 10.0,
                 on_reject: Callable[[str, str], None] | None = None) -> None:
        self._usage, self._counters, self._pending = usage, counters, pending
        self.clock = clock or (lambda: datetime.now(UTC))
        self._cache: TTLCache[tuple[Any, ...], tuple[int, dict[tuple[str, datetime], dict[str, int]]]] = \
            TTLCache(maxsize=10_000, ttl=cache_ttl_s) if cache_ttl_s > 0 else TTLCache(maxsize=1, ttl=1e-9)
        self._store_timeout_s = store_timeout_s
        self._degraded_s = degraded_s
        self._degraded_until = 0.0
        self._local_counts: dict[str, int] = {}
        self._on_reject = on_reject

    @staticmethod
    def _checks(principal: Principal) -> list[_Check]:
        checks = [_Check("key", principal.access_key_id, effective_limits(principal.key_limits)),
                  _Check("user", principal.user_id, effective_limits(principal.user_limits))]
        return [c for c in checks if c.limits and c.scope_id]

    async def check(self, preq: ProxyRequest) -> None:
        """Raises RateLimited (429, ``retry-after``) if the request's key or user is over a limit."""
        if preq.endpoint != "messages":
            return
        checks = self._checks(preq.principal)
        if not checks:
            return
        now = self.clock()
        for c in checks:
            budgets = [LIMITS[n] for n in c.limits if LIMITS[n].metric != "requests"]
            if budgets:
                used = await self._window_usage(c.scope, c.scope_id, {s.window for s in budgets}, now)
                for spec in budgets:
                    value = used[spec.window][spec.metric]
                    limit = c.limits[spec.name] * (1_000_000 if spec.metric == "cost" else 1)
                    if value >= limit:
                        self._reject(c, spec, now, value)
        rpm = [c for c in checks if "requests_per_minute" in c.limits]
        if rpm:
            counts = await asyncio.gather(*(self._hit(c.scope, c.scope_id, now) for c in rpm))
            for c, count in zip(rpm, counts, strict=True):
                if count > c.limits["requests_per_minute"]:
                    self._reject(c, LIMITS["requests_per_minute"], now, count)

    async def status(self, principal: Principal) -> dict[str, dict[str, dict[str, Any]]]:
        """Current use of every limit set on the key and the user:
        ``{"access_key"|"user": {limit_name: {"limit", "used", "remaining", "unit", "resets_at"}}}``
        (cost in USD). Does not count as a request."""
        now = self.clock()
        out: dict[str, dict[str, dict[str, Any]]] = {}
        for c in self._checks(principal):
            windows = {LIMITS[n].window for n in c.limits}
            used = await self._window_usage(c.scope, c.scope_id, windows, now)
            if "requests_per_minute" in c.limits:
                used["minute"]["requests"] = await self._peek(c.scope, c.scope_id, now)
            rows = {}
            for name, limit in c.limits.items():
                spec = LIMITS[name]
                value: float = used[spec.window][spec.metric]
                if spec.metric == "cost":
                    value = value / 1_000_000
                rows[name] = {"limit": limit, "used": value, "remaining": max(0, limit - value),
                              "unit": _UNIT[spec.metric],
                              "resets_at": next_start(floor(now, spec.window), spec.window).isoformat()}
            out["access_key" if c.scope == "key" else "user"] = rows
        return out

    def _reject(self, c: _Check, spec: LimitSpec, now: datetime, used: float) -> None:
        resets = next_start(floor(now, spec.window), spec.window)
        retry_after_s = max(1.0, (resets - now).total_seconds())
        limit = c.limits[spec.name]
        if spec.metric == "cost":
            amount = f"${used / 1_000_000:.2f} of ${limit:.2f} used"
        elif spec.metric == "tokens":
            amount = f"{int(used)} of {int(limit)} tokens used"
        else:
            amount = f"at most {int(limit)} requests"
        period = {"minute": "this minute", "day": "today (UTC)", "month": "this month (UTC)"}[spec.window]
        if self._on_reject is not None:
            self._on_reject(c.scope, spec.name)
        raise RateLimited(
            f"{_SCOPE_LABEL[c.scope]} {c.scope_id}: {spec.name} limit reached ({amount} {period}); "
            f"resets at {resets.isoformat().replace('+00:00', 'Z')}, retry after {math.ceil(retry_after_s)} s",
            retry_after_s=retry_after_s)

    # --- usage of windows: store (cached) + pending -------------------------------------

    async def _window_usage(self, scope: Scope, scope_id: str, windows: set[Granularity],
                            now: datetime) -> dict[str, dict[str, int]]:
        starts = {g: floor(now, g) for g in sorted(windows)}
        stored = await self._stored(scope, scope_id, tuple(sorted(starts.items())))
        out: dict[str, dict[str, int]] = {}
        for g, start in starts.items():
            counters = stored.get((g, start), {})
            pending_tokens, pending_cost = self._pending.get(scope, scope_id, g, start)
            out[g] = {"tokens": _tokens(counters) + pending_tokens,
                      "cost": int(counters.get("cost_usd_micros", 0)) + pending_cost, "requests": 0}
        return out

    async def _stored(self, scope: Scope, scope_id: str,
                      windows: tuple[tuple[Granularity, datetime], ...]) -> dict[tuple[str, datetime], dict[str, int]]:
        key = (scope, scope_id, windows)
        cached = self._cache.get(key)
        generation = self._pending.generation
        if cached is not None and cached[0] == generation:
            return cached[1]
        if self._degraded():
            return cached[1] if cached else {}
        try:
            value = await asyncio.wait_for(self._usage.window_totals(scope, scope_id, windows),
                                           timeout=self._store_timeout_s)
        except Exception as exc:  # noqa: BLE001 - fail open: never block traffic on the store
            self._degrade(exc)
            return cached[1] if cached else {}
        self._cache[key] = (generation, value)
        return value

    # --- request counters -----------------------------------------------------------------

    @staticmethod
    def _counter_id(scope: str, scope_id: str, window: datetime) -> str:
        return f"rpm:{scope}:{scope_id}:{window:%Y%m%dT%H%M}"

    async def _hit(self, scope: str, scope_id: str, now: datetime) -> int:
        window = floor(now, "minute")
        counter_id = self._counter_id(scope, scope_id, window)
        if not self._degraded():
            try:
                return await asyncio.wait_for(
                    self._counters.hit(counter_id, expires_at=window + timedelta(minutes=2)),
                    timeout=self._store_timeout_s)
            except Exception as exc:  # noqa: BLE001 - fail open to local counting
                self._degrade(exc)
        if len(self._local_counts) > 10_000:
            self._local_counts.clear()
        self._local_counts[counter_id] = self._local_counts.get(counter_id, 0) + 1
        return self._local_counts[counter_id]

    async def _peek(self, scope: str, scope_id: str, now: datetime) -> int:
        counter_id = self._counter_id(scope, scope_id, floor(now, "minute"))
        if not self._degraded():
            try:
                return await asyncio.wait_for(self._counters.peek(counter_id), timeout=self._store_timeout_s)
            except Exception as exc:  # noqa: BLE001
                self._degrade(exc)
        return self._local_counts.get(counter_id, 0)

    def _degraded(self) -> bool:
        return time.monotonic() < self._degraded_until

    def _degrade(self, exc: BaseException) -> None:
        self._degraded_until = time.monotonic() + self._degraded_s
        log.warning("quota store call failed (%s); counting locally for %.0fs", type(exc).__name__,
                    self._degraded_s)
