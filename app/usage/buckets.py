"""Time buckets for usage aggregates (pure: no I/O).

A bucket is one period of one granularity: ``minute``, ``hour``, ``day``, ISO ``week`` (Monday
00:00) or calendar ``month``, for one scope (``global``, one ``user``, one access ``key``), one
provider and one model. Stored buckets are aligned in UTC; views in another IANA zone regroup hour
buckets by the zone's local day/week/month (see ``app/usage/query.py``).

All datetimes in and out are timezone-aware; bucket starts are returned in UTC. Local periods are
computed with ``zoneinfo`` (tzdata): a local midnight that falls in a DST gap starts the day at the
transition instant, an ambiguous one at its first occurrence (PEP 495 ``fold=0``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Literal

from app.usage.events import UsageEvent

Granularity = Literal["minute", "hour", "day", "week", "month"]
GRANULARITIES: tuple[Granularity, ...] = ("minute", "hour", "day", "week", "month")
Scope = Literal["global", "user", "key"]

TOKEN_COUNTERS = ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
COUNTERS = ("requests", "errors", "fallbacks", *TOKEN_COUNTERS, "cache_creation_1h_input_tokens",
            "cost_usd_micros", "cost_unknown_requests", "bedrock_by_policy", "cost_estimated_requests")
"""Every bucket's ``$inc`` counters: request counts, tokens (the four Anthropic counters plus the
1-hour part of cache creation), ``cost_usd_micros`` (integer micro-USD, priced requests only),
``cost_unknown_requests`` (requests whose model had no price) and ``bedrock_by_policy`` (the part of
``fallbacks`` sent to Bedrock by choice, not because Anthropic failed: ``bedrock_only`` keys and
``PROXY_FORCE_FALLBACK``; buckets written before it existed count 0) and ``cost_estimated_requests``
(requests of a model with no price, billed at the default tier; app/usage/pricing.py)."""
POLICY_REASONS = frozenset({"bedrock_only", "forced"})  # fallback_reason values that are routing, not failure

MODEL_MAX_CHARS = 128  # the model name is client-supplied; bound what one request can store
UNKNOWN_MODEL = "unknown"


def _aware(t: datetime) -> datetime:
    if t.tzinfo is None:
        raise ValueError("naive datetime: pass a timezone-aware datetime")
    return t


def _local_midnight(day: date, tz: tzinfo) -> datetime:
    # fold=0: a nonexistent local midnight maps to the DST transition instant, an ambiguous one
    # to its first occurrence; both are where the local day really begins.
    return datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)


def floor(t: datetime, granularity: Granularity, tz: tzinfo = UTC) -> datetime:
    """Start (UTC) of the ``granularity`` period in zone ``tz`` that contains instant ``t``.

    Raises ValueError for a naive ``t`` or an unknown granularity.
    """
    t = _aware(t)
    if granularity == "minute":
        return t.astimezone(UTC).replace(second=0, microsecond=0)
    local = t.astimezone(tz)
    if granularity == "hour":
        return local.replace(minute=0, second=0, microsecond=0).astimezone(UTC)
    day = local.date()
    if granularity == "day":
        return _local_midnight(day, tz)
    if granularity == "week":
        return _local_midnight(day - timedelta(days=day.weekday()), tz)
    if granularity == "month":
        return _local_midnight(day.replace(day=1), tz)
    raise ValueError(f"unknown granularity {granularity!r}")


def next_start(start: datetime, granularity: Granularity, tz: tzinfo = UTC) -> datetime:
    """Start (UTC) of the period after the one that begins at ``start`` (itself a period start).

    Minutes and hours are absolute (60 s, 3600 s); days, weeks and months follow ``tz``'s calendar,
    so a local day can last 23 or 25 hours.
    """
    start = _aware(start)
    if granularity == "minute":
        return start + timedelta(minutes=1)
    if granularity == "hour":
        return start + timedelta(hours=1)
    day = start.astimezone(tz).date()
    if granularity == "day":
        return _local_midnight(day + timedelta(days=1), tz)
    if granularity == "week":
        return _local_midnight(day + timedelta(days=7), tz)
    if granularity == "month":
        first = date(day.year + day.month // 12, day.month % 12 + 1, 1)
        return _local_midnight(first, tz)
    raise ValueError(f"unknown granularity {granularity!r}")


class TooManyBuckets(ValueError):
    """A range spans more buckets than allowed."""


def starts(begin: datetime, end: datetime, granularity: Granularity, tz: tzinfo = UTC, *,
           limit: int = 10_000) -> list[datetime]:
    """Starts (UTC) of every period that begins in ``[floor(begin), end)``.

    Raises TooManyBuckets past ``limit`` periods.
    """
    out: list[datetime] = []
    current = floor(begin, granularity, tz)
    while current < end:
        if len(out) >= limit:
            raise TooManyBuckets(f"more than {limit} {granularity} buckets between {begin} and {end}")
        out.append(current)
        current = next_start(current, granularity, tz)
    return out


@dataclass(frozen=True, slots=True)
class Retention:
    """How long fine buckets live (days); day, week and month buckets are kept forever."""

    minute_days: int = 3
    hour_days: int = 93

    def expires_at(self, granularity: Granularity, start: datetime) -> datetime | None:
        """When the bucket starting at ``start`` may be deleted (TTL on ``expires_at``), or None."""
        if granularity == "minute":
            return start + timedelta(days=self.minute_days)
        if granularity == "hour":
            return start + timedelta(days=self.hour_days)
        return None

    def oldest(self, granularity: Granularity, now: datetime) -> datetime | None:
        """The oldest start still guaranteed to be stored at ``now``, or None (kept forever)."""
        if granularity == "minute":
            return now - timedelta(days=self.minute_days)
        if granularity == "hour":
            return now - timedelta(days=self.hour_days)
        return None


@dataclass(frozen=True, slots=True)
class BucketKey:
    """What one bucket document aggregates. ``scope_id`` is "" for global, else the user or key id."""

    granularity: Granularity
    start: datetime
    scope: Scope
    scope_id: str
    user_id: str | None
    access_key_id: str | None
    provider: str
    model: str

    @property
    def id(self) -> str:
        """The document ``_id``; the free-form model comes last, so ids cannot collide."""
        return (f"{self.granularity}|{self.start:%Y-%m-%dT%H:%MZ}|{self.scope}|{self.scope_id}|"
                f"{self.provider}|{self.model}")

    def dimensions(self) -> dict[str, object]:
        return {"granularity": self.granularity, "start": self.start, "scope": self.scope,
                "scope_id": self.scope_id, "user_id": self.user_id, "access_key_id": self.access_key_id,
                "provider": self.provider, "model": self.model}


def event_counters(event: UsageEvent) -> dict[str, int]:
    """One event's contribution to every counter in COUNTERS (errors: status >= 400, client
    disconnects (499) included; fallbacks: a fallback reason is set; bedrock_by_policy: that reason
    is ``bedrock_only`` or ``forced``)."""
    return {
        "requests": 1,
        "errors": int(event.status >= 400),
        "fallbacks": int(event.fallback_reason is not None),
        "input_tokens": event.input_tokens,
        "output_tokens": event.output_tokens,
        "cache_creation_input_tokens": event.cache_creation_input_tokens,
        "cache_read_input_tokens": event.cache_read_input_tokens,
        "cache_creation_1h_input_tokens": event.cache_creation_1h_input_tokens,
        "cost_usd_micros": event.cost_usd_micros or 0,
        "cost_unknown_requests": int(event.cost_usd_micros is None),
        "bedrock_by_policy": int(event.fallback_reason in POLICY_REASONS),
        "cost_estimated_requests": int(bool(event.cost_estimated)),
    }


def bucket_model(model: str | None) -> str:
    return (model or UNKNOWN_MODEL)[:MODEL_MAX_CHARS]


def bucket_keys(event: UsageEvent) -> list[BucketKey]:
    """The buckets one event lands in: 5 granularities x (global, user, key) (the user and key
    scopes only when the event has them)."""
    t = event.time if event.time.tzinfo else event.time.replace(tzinfo=UTC)
    model = bucket_model(event.model)
    scopes: list[tuple[Scope, str, str | None, str | None]] = [("global", "", None, None)]
    if event.user_id:
        scopes.append(("user", event.user_id, event.user_id, None))
    if event.access_key_id:
        scopes.append(("key", event.access_key_id, event.user_id, event.access_key_id))
    keys = []
    for granularity in GRANULARITIES:
        start = floor(t, granularity)
        for scope, scope_id, user_id, key_id in scopes:
            keys.append(BucketKey(granularity, start, scope, scope_id, user_id, key_id, event.provider, model))
    return keys


def fold(events: Iterable[UsageEvent]) -> dict[str, tuple[BucketKey, dict[str, int]]]:
    """Sum events per bucket: ``{bucket_id: (key, counters)}`` (one ``$inc`` per bucket)."""
    out: dict[str, tuple[BucketKey, dict[str, int]]] = {}
    for event in events:
        counters = event_counters(event)
        for key in bucket_keys(event):
            entry = out.get(key.id)
            if entry is None:
                out[key.id] = (key, dict(counters))
            else:
                total = entry[1]
                for name, value in counters.items():
                    total[name] += value
    return out


def empty_counters() -> dict[str, int]:
    return dict.fromkeys(COUNTERS, 0)


def add_counters(total: dict[str, int], doc: dict[str, object]) -> None:
    """Add a bucket document's counters into ``total`` (missing counters count as 0)."""
    for name in COUNTERS:
        total[name] += int(doc.get(name) or 0)  # type: ignore[call-overload]
