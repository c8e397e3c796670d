"""Usage reports over the time buckets: the admin API, ``/v1/usage/me`` and the dashboard call these.

- :func:`usage_report` -> totals, a zero-filled series, and breakdowns by provider and by model.
- :func:`top_users` -> the users with the most tokens, cost or requests in a range.

Ranges are whole buckets: ``start`` is rounded down to its bucket, and every bucket that *begins*
before ``end`` is included whole (the answer's ``from``/``to`` say what was covered). Stored buckets
are UTC; in another IANA zone (``tz``), days, ISO weeks (Monday) and months are built from hour
buckets, so they need hour buckets (kept ``Retention.hour_days``). In zones whose offset is not a whole
number of hours (Asia/Kolkata, +05:30) each UTC hour is counted in the local period where it starts,
and the answer says ``"approximate": true``. Minutes and hours are absolute instants in any zone.
Errors: ``InvalidRequest`` (400) for bad parameters, ranges past retention, or too many points.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from app.errors import InvalidRequest
from app.store.usage import BucketQuery, UsageRepository
from app.usage.buckets import (
    GRANULARITIES,
    TOKEN_COUNTERS,
    Granularity,
    Retention,
    TooManyBuckets,
    add_counters,
    empty_counters,
    floor,
    next_start,
    starts,
)

TopMetric = Literal["tokens", "cost", "requests"]
DEFAULT_RANGE = timedelta(hours=24)
MAX_POINTS = 10_000
MAX_TOP = 1000
_UTC_NAMES = frozenset({"UTC", "Etc/UTC", "Etc/Universal", "Universal", "Zulu", "Etc/Zulu", "Etc/GMT", "GMT"})
_SORT_FIELD = {"tokens": "total_tokens", "cost": "cost_usd_micros", "requests": "requests"}


def parse_zone(name: str | None) -> ZoneInfo:
    """An IANA zone name (``UTC`` when empty); InvalidRequest for an unknown one."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidRequest(f"tz: unknown time zone {name!r}; use an IANA name such as UTC or Asia/Seoul") from None


def parse_time(value: str | None, zone: tzinfo = UTC, *, name: str = "from") -> datetime | None:
    """ISO 8601 (``2025-03-01``, ``2025-03-01T09:00``, ``...Z``, ``...+09:00``) -> aware datetime.
    A value without an offset is local time in ``zone``. None/empty -> None. InvalidRequest otherwise."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidRequest(f"{name}: not an ISO 8601 date or time: {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)


def parse_granularity(value: str | None) -> Granularity:
    value = value or "hour"
    if value not in GRANULARITIES:
        raise InvalidRequest(f"granularity: must be one of {', '.join(GRANULARITIES)}")
    return value  # type: ignore[return-value]


def present(counters: dict[str, int]) -> dict[str, Any]:
    """Counters as the API shows them: plus ``total_tokens`` and ``cost_usd`` (float USD)."""
    return {**counters, "total_tokens": sum(counters[n] for n in TOKEN_COUNTERS),
            "cost_usd": round(counters["cost_usd_micros"] / 1_000_000, 6)}


def _range(start: datetime | None, end: datetime | None, now: datetime) -> tuple[datetime, datetime]:
    end = end or now
    start = start or end - DEFAULT_RANGE
    if start >= end:
        raise InvalidRequest("from: must be before to")
    return start, end


def _check_retention(granularity: Granularity, first: datetime, now: datetime, retention: Retention,
                     why: str = "") -> None:
    oldest = retention.oldest(granularity, now)
    if oldest is not None and first < oldest:
        days = retention.minute_days if granularity == "minute" else retention.hour_days
        raise InvalidRequest(f"{granularity} buckets are kept {days} days{why}; this range starts "
                             f"{first.isoformat()}: ask for a coarser granularity, a later from, or tz=UTC")


async def usage_report(db: Any, *, start: datetime | None = None, end: datetime | None = None,
                       granularity: Granularity = "hour", tz: str = "UTC", user_id: str | None = None,
                       access_key_id: str | None = None, provider: str | None = None, model: str | None = None,
                       now: datetime | None = None, retention: Retention | None = None) -> dict[str, Any]:
    """Usage of one scope (an access key if ``access_key_id``, else a user if ``user_id``, else
    everyone), optionally only one ``provider`` and/or ``model``, over ``[start, end)`` (default: the
    24 hours before ``now``), per ``granularity`` bucket in zone ``tz``.

    Returns ``{"from", "to", "granularity", "tz", "approximate", "scope": {"type", "user_id",
    "access_key_id"}, "totals": C, "series": [{"start", **C}], "by_provider": {name: C},
    "by_model": {name: C}}`` where C = requests, errors, fallbacks, input_tokens, output_tokens,
    cache_creation_input_tokens, cache_creation_1h_input_tokens, cache_read_input_tokens, total_tokens
    (tokens), cost_usd_micros (int, micro-USD), cost_usd (USD), cost_unknown_requests; times are ISO
    8601 in ``tz``. ``totals`` is exactly the sum of ``series``. Raises InvalidRequest.
    """
    zone = parse_zone(tz)
    retention = retention or Retention()
    now = now or datetime.now(UTC)
    start, end = _range(start, end, now)
    calendar = granularity in ("day", "week", "month")
    derived = calendar and zone.key not in _UTC_NAMES
    series_zone: tzinfo = zone if calendar else UTC
    read_granularity: Granularity = "hour" if derived else granularity
    _check_retention(read_granularity, floor(start, granularity, series_zone), now, retention,
                     " (days, weeks and months outside UTC are built from them)" if derived else "")
    try:
        points = starts(start, end, granularity, series_zone, limit=MAX_POINTS)
    except TooManyBuckets:
        raise InvalidRequest(f"the range has more than {MAX_POINTS} {granularity} buckets; "
                             "narrow it or use a coarser granularity") from None
    range_end = next_start(points[-1], granularity, series_zone)
    if access_key_id:
        scope, scope_id = "key", access_key_id
    elif user_id:
        scope, scope_id = "user", user_id
    else:
        scope, scope_id = "global", ""
    docs = await UsageRepository(db).find_buckets(BucketQuery(
        scope=scope, scope_id=scope_id, granularity=read_granularity,  # type: ignore[arg-type]
        start_gte=points[0], start_lt=range_end, user_id=user_id if access_key_id else None,
        provider=provider, model=model))
    series = {p: empty_counters() for p in points}
    totals = empty_counters()
    by_provider: dict[str, dict[str, int]] = {}
    by_model: dict[str, dict[str, int]] = {}
    for doc in docs:
        bucket_start = doc["start"] if doc["start"].tzinfo else doc["start"].replace(tzinfo=UTC)
        point = floor(bucket_start, granularity, series_zone) if derived else bucket_start
        add_counters(series.setdefault(point, empty_counters()), doc)
        add_counters(totals, doc)
        add_counters(by_provider.setdefault(doc.get("provider") or "unknown", empty_counters()), doc)
        add_counters(by_model.setdefault(doc.get("model") or "unknown", empty_counters()), doc)
    approximate = derived and any((p.astimezone(zone).utcoffset() or timedelta()) % timedelta(hours=1)
                                  for p in (points[0], points[-1]))
    return {
        "from": points[0].astimezone(zone).isoformat(), "to": range_end.astimezone(zone).isoformat(),
        "granularity": granularity, "tz": zone.key, "approximate": bool(approximate),
        "scope": {"type": {"key": "access_key"}.get(scope, scope), "user_id": user_id,
                  "access_key_id": access_key_id},
        "filters": {"provider": provider, "model": model},
        "totals": present(totals),
        "series": [{"start": p.astimezone(zone).isoformat(), **present(series[p])} for p in sorted(series)],
        "by_provider": {name: present(c) for name, c in sorted(by_provider.items())},
        "by_model": {name: present(c) for name, c in sorted(by_model.items())},
    }


async def top_users(db: Any, *, start: datetime | None = None, end: datetime | None = None, limit: int = 10,
                    metric: TopMetric = "tokens", now: datetime | None = None,
                    retention: Retention | None = None) -> dict[str, Any]:
    """The ``limit`` users with the most ``metric`` (``tokens``: all four token counters; ``cost``:
    micro-USD; ``requests``) over ``[start, end)`` (default: the last 24 hours), UTC.

    Uses hour buckets when the range is within their retention, else day buckets (``start`` rounded
    down to its UTC hour or day). Returns ``{"from", "to", "metric", "users": [{"user_id", "name",
    "email", **C}]}`` (C as in :func:`usage_report`), largest first. Raises InvalidRequest.
    """
    if metric not in get_args(TopMetric):
        raise InvalidRequest("metric: must be one of tokens, cost, requests")
    if not 1 <= limit <= MAX_TOP:
        raise InvalidRequest(f"limit: must be between 1 and {MAX_TOP}")
    retention = retention or Retention()
    now = now or datetime.now(UTC)
    start, end = _range(start, end, now)
    oldest_hour = retention.oldest("hour", now)
    granularity: Granularity = "hour" if oldest_hour is None or floor(start, "hour") >= oldest_hour else "day"
    first = floor(start, granularity)
    repo = UsageRepository(db)
    rows = await repo.totals_by_scope_id("user", granularity, first, end)
    counted = []
    for row in rows:
        counters = empty_counters()
        add_counters(counters, row)
        counted.append((row["_id"], present(counters)))
    field = _SORT_FIELD[metric]
    counted.sort(key=lambda item: (-item[1][field], item[0]))
    top = counted[:limit]
    names = await repo.user_names([user_id for user_id, _ in top])
    last = floor(end - timedelta(microseconds=1), granularity)
    return {
        "from": first.isoformat(), "to": next_start(last, granularity).isoformat(), "metric": metric,
        "users": [{"user_id": user_id, **names.get(user_id, {"name": None, "email": None}), **counters}
                  for user_id, counters in top],
    }


async def top_sessions(db: Any, user_id: str, *, start: datetime | None = None, end: datetime | None = None,
                       limit: int = 10, now: datetime | None = None) -> dict[str, Any]:
    """A user's Claude Code sessions (``x-claude-code-session-id``) with the highest cost in
    ``[start, end)`` (default: the last 24 hours), from raw events (kept ``usage_event_ttl_days``).

    Returns ``{"from", "to", "user_id", "sessions": [{"session_id", "requests", "cost_usd",
    "cost_usd_micros", "main_cost_usd_micros", "subagent_cost_usd_micros", "subagent_share" (0..1 of
    cost; of requests when the cost is 0), "subagent_requests", "agents" (distinct agent ids),
    "estimated_requests", "input_tokens", "output_tokens", "cache_creation_input_tokens",
    "cache_read_input_tokens", "first", "last"}]}``. Agent ids group requests inside a session;
    they never stand for a user. Raises InvalidRequest for a bad limit or range.
    """
    from app.store.reports import session_totals

    if not 1 <= limit <= MAX_TOP:
        raise InvalidRequest(f"limit: must be between 1 and {MAX_TOP}")
    start, end = _range(start, end, now or datetime.now(UTC))
    sessions = []
    for row in await session_totals(db, user_id, start, end, limit):
        cost, sub = int(row.get("cost_usd_micros") or 0), int(row.get("subagent_cost_usd_micros") or 0)
        requests, sub_requests = int(row.get("requests") or 0), int(row.get("subagent_requests") or 0)
        share = sub / cost if cost else (sub_requests / requests if requests else 0.0)
        sessions.append({
            "session_id": row["_id"], "requests": requests, "cost_usd_micros": cost,
            "cost_usd": round(cost / 1_000_000, 6), "main_cost_usd_micros": cost - sub,
            "subagent_cost_usd_micros": sub, "subagent_share": round(share, 4), "subagent_requests": sub_requests,
            "agents": len([a for a in row.get("agents") or [] if a]),
            "estimated_requests": int(row.get("estimated_requests") or 0),
            **{name: int(row.get(name) or 0) for name in TOKEN_COUNTERS},
            "first": _iso(row.get("first")), "last": _iso(row.get("last"))})
    return {"from": start.isoformat(), "to": end.isoformat(), "user_id": user_id, "sessions": sessions}


def _iso(value: Any) -> str | None:
    if not isinstance(value, datetime):
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
