"""Dashboard form and query-string parsing (pure). Bad input raises ``InvalidRequest`` with a message
naming the field, which the page shows in its alert region.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import available_timezones

from app.errors import InvalidRequest
from app.usage import query
from app.records.buckets import Granularity
from app.usage.limits import LIMITS

RANGES: dict[str, timedelta] = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}
DEFAULT_GRANULARITY: dict[str, Granularity] = {"24h": "hour", "7d": "day", "30d": "day"}
USER_STATUSES = ("active", "disabled", "deleted")
# A bar chart stays readable up to about this many bars (7 days of hours: 168); a finer
# granularity than the range allows is coarsened, and the page says so.
MAX_BARS = 170
BUCKET_SPAN: dict[Granularity, timedelta] = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1),
                                            "day": timedelta(days=1), "week": timedelta(days=7),
                                            "month": timedelta(days=31)}


def bar_count(span: timedelta, granularity: Granularity) -> int:
    """About how many buckets of ``granularity`` a range of ``span`` draws (a partial one included)."""
    return int(span / BUCKET_SPAN[granularity]) + 1


def allowed_granularities(span: timedelta) -> tuple[Granularity, ...]:
    """The granularities that draw at most MAX_BARS bars over ``span`` (month always)."""
    return tuple(g for g in BUCKET_SPAN if g == "month" or bar_count(span, g) <= MAX_BARS)


def auto_granularity(span: timedelta) -> Granularity:
    """The default for a custom range: hours up to 2 days, days up to ~3 months, weeks up to ~2
    years, then months."""
    if span <= timedelta(days=2):
        return "hour"
    if span <= timedelta(days=92):
        return "day"
    if span <= timedelta(days=730):
        return "week"
    return "month"


@lru_cache(maxsize=1)
def all_zones() -> tuple[str, ...]:
    """Every IANA zone name tzdata knows (``zoneinfo.available_timezones()``), sorted, UTC first."""
    return ("UTC", *sorted(z for z in available_timezones() if z != "UTC" and not z.startswith(("posix/", "right/"))))


@dataclass(frozen=True)
class UsageQuery:
    """What a usage page shows: ``range`` (24h | 7d | 30d | custom), ``[start, end)``, granularity, zone.
    ``from_text``/``to_text`` echo the custom range inputs (dates, ``to`` inclusive)."""

    range: str
    start: datetime
    end: datetime
    granularity: Granularity
    tz: str
    from_text: str = ""
    to_text: str = ""
    coarsened_from: str | None = None  # the granularity asked for, when it would draw too many bars
    auto: bool = True  # no granularity asked for: the range chose it (and will again when it changes)

    @property
    def menu_choice(self) -> str:
        """The granularity menu's selected value: "" (auto) or the granularity in force."""
        return "" if self.auto else self.granularity

    @property
    def granularities(self) -> tuple[Granularity, ...]:
        """What the granularity menu offers for this range."""
        return allowed_granularities(self.end - self.start)

    def params(self) -> dict[str, str]:
        """The query string that reproduces this view (``granularity`` "" when the range chose it)."""
        out = {"range": self.range, "granularity": self.menu_choice, "tz": self.tz}
        if self.range == "custom":
            out.update({"from": self.from_text, "to": self.to_text})
        return out


def _text(params: Mapping[str, Any], name: str) -> str:
    value = params.get(name)
    return value.strip() if isinstance(value, str) else ""


def usage_query(params: Mapping[str, Any], now: datetime, *, default_tz: str | None = None) -> UsageQuery:
    """``range``, ``granularity``, ``tz``, ``from``, ``to`` (query string) -> UsageQuery.

    ``from``/``to`` are ISO dates or date-times in ``tz`` (else ``default_tz``, the remembered
    choice, else UTC); a bare date in ``to`` includes that whole day; an empty ``from`` means 7 days
    before ``to``. Without ``granularity`` the range picks it (24h: hour, 7d and 30d: day, custom:
    :func:`auto_granularity`); one that would draw more than MAX_BARS bars is coarsened to the finest
    that does not (``coarsened_from`` says so). Raises InvalidRequest for an unknown range, zone or
    granularity or a bad date."""
    range_name = _text(params, "range") or "24h"
    if range_name not in (*RANGES, "custom"):
        raise InvalidRequest(f"range: must be one of {', '.join((*RANGES, 'custom'))}")
    zone = query.parse_zone(_text(params, "tz") or default_tz or "UTC")
    asked = _text(params, "granularity")
    if asked:
        query.parse_granularity(asked)
    from_text, to_text = _text(params, "from"), _text(params, "to")
    if range_name != "custom":
        start, end = now - RANGES[range_name], now
    else:
        asked_end = query.parse_time(to_text, zone, name="to")
        if asked_end is not None and len(to_text) == 10:  # a bare date: through the end of that day
            asked_end += timedelta(days=1)
        end = min(asked_end or now, now)
        asked_start = query.parse_time(from_text, zone, name="from")
        if asked_start is not None:
            start = asked_start
        else:  # "custom" just picked: start from the last 7 days, shown in the inputs
            start = end - RANGES["7d"]
            from_text = start.astimezone(zone).date().isoformat()
        if start >= end:
            raise InvalidRequest("from: must be before to (and before now)")
    span = end - start
    wanted: Granularity = asked or DEFAULT_GRANULARITY.get(range_name) or auto_granularity(span)  # type: ignore[assignment]
    allowed = allowed_granularities(span)
    granularity = wanted if wanted in allowed else allowed[0]
    coarsened = wanted if granularity != wanted else None
    if range_name != "custom":
        from_text = to_text = ""
    return UsageQuery(range_name, start, end, granularity, zone.key, from_text, to_text, coarsened_from=coarsened,
                      auto=not asked)


def limits_patch(form: Mapping[str, Any]) -> dict[str, float | int | None]:
    """The limits form -> a ``set_limits`` patch: every limit in ``LIMITS`` is set, an empty field
    clears it. Raises InvalidRequest for text that is not a number (the service checks ranges)."""
    patch: dict[str, float | int | None] = {}
    for name in LIMITS:
        raw = _text(form, name).replace(",", "").replace("_", "")
        if not raw:
            patch[name] = None
            continue
        try:
            number = float(raw)
        except ValueError:
            raise InvalidRequest(f"limits.{name}: not a number: {raw!r}") from None
        patch[name] = int(number) if number.is_integer() and not name.startswith("cost_") else number
    return patch


def user_status(value: str | None) -> str | None:
    """The users list's status filter: "" (all) -> None; else one of USER_STATUSES."""
    if not value:
        return None
    if value not in USER_STATUSES:
        raise InvalidRequest(f"status: must be one of {', '.join(USER_STATUSES)} (or empty for all)")
    return value


def page_number(value: str | None) -> int:
    try:
        page = int(value or 1)
    except ValueError:
        raise InvalidRequest("page: must be a whole number >= 1") from None
    if page < 1:
        raise InvalidRequest("page: must be a whole number >= 1")
    return page
