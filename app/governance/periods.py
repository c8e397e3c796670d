"""Spend-limit periods (pure): ``daily``, ``weekly`` (ISO week, from Monday) and ``monthly``, in
the organization's time zone (``PROXY_ORG_TIME_ZONE``, IANA; UTC by default).

Starts and ends are returned as aware UTC datetimes; local midnights in a DST gap or fold follow
app/records/buckets.py ``floor`` (the instant the local day really begins).
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from app.records.buckets import Granularity, floor, next_start

Period = Literal["daily", "weekly", "monthly"]
PERIODS: tuple[Period, ...] = ("daily", "weekly", "monthly")
GRANULARITY: dict[Period, Granularity] = {"daily": "day", "weekly": "week", "monthly": "month"}


def zone(name: str | None) -> tzinfo:
    """``"Europe/Paris"`` -> its ZoneInfo; None, "" or "UTC" -> UTC. Raises ValueError for an unknown name."""
    if not name or name.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown IANA time zone {name!r}") from None


def period_start(now: datetime, period: Period, tz: tzinfo = UTC) -> datetime:
    """Start (UTC) of the ``period`` containing ``now`` in zone ``tz``."""
    return floor(now, GRANULARITY[period], tz)


def period_end(start: datetime, period: Period, tz: tzinfo = UTC) -> datetime:
    """Start (UTC) of the next period: when the cap resets."""
    return next_start(start, GRANULARITY[period], tz)


def iso_z(t: datetime) -> str:
    """RFC 3339 with ``Z`` (``2025-06-01T00:00:00Z``)."""
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")
