"""A developer's own usage and spend for ``/me`` (one ``usage_report`` query, then pure sums).

Periods are UTC, as the spend limits count them (app/usage/limits.py): today, this ISO week
(from Monday), this month. One day-granularity report from the earlier of the week's and the
month's start gives all three; ``by_model`` covers that whole range (its ``from`` is shown).
By session: not available, because usage events do not carry a Claude Code session id yet.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from app.usage import query

PERIOD_LIMITS = {"today": ("tokens_per_day", "cost_usd_per_day"), "week": (None, None),
                 "month": ("tokens_per_month", "cost_usd_per_month")}


def period_starts(now: datetime) -> dict[str, datetime]:
    day = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return {"today": day, "week": day - timedelta(days=day.weekday()), "month": day.replace(day=1)}


def summarize(report: dict[str, Any], now: datetime, limits: dict[str, Any] | None) -> dict[str, Any]:
    """``usage_report`` output -> ``{"periods": [{"name", "since", "requests", "total_tokens",
    "cost_usd", "token_limit", "cost_limit_usd"}], "by_model": [{"model", ...counters}], "since"}``
    (USD floats, tokens ints; limits None when unset)."""
    limits = limits or {}
    periods = []
    for name, start in period_starts(now).items():
        rows = [p for p in report["series"] if datetime.fromisoformat(p["start"]) >= start]
        token_limit, cost_limit = PERIOD_LIMITS[name]
        periods.append({"name": name, "since": start.date().isoformat(),
                        "requests": sum(p["requests"] for p in rows),
                        "total_tokens": sum(p["total_tokens"] for p in rows),
                        "cost_usd": round(sum(p["cost_usd_micros"] for p in rows) / 1_000_000, 6),
                        "token_limit": limits.get(token_limit) if token_limit else None,
                        "cost_limit_usd": limits.get(cost_limit) if cost_limit else None})
    by_model = sorted(({"model": model, **counters} for model, counters in report["by_model"].items()),
                      key=lambda row: (-row["cost_usd_micros"], -row["total_tokens"]))
    return {"periods": periods, "by_model": by_model, "since": report["from"][:10]}


async def my_spend(db: Any, user_id: str, *, limits: dict[str, Any] | None, now: datetime | None = None,
                   retention: Any = None) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    starts = period_starts(now)
    report = await query.usage_report(db, start=min(starts["week"], starts["month"]), end=now, granularity="day",
                                      tz="UTC", user_id=user_id, now=now, retention=retention)
    return summarize(report, now, limits)
