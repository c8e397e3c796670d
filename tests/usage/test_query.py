"""usage_report and top_users over real buckets written by UsageWriter: granularities, zones,
filters, retention limits and parameter errors."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from mongomock_motor import AsyncMongoMockClient

from app.errors import InvalidRequest
from app.store.usage_write import UsageWriter
from app.records.buckets import GRANULARITIES, Retention
from app.records.events import UsageEvent
from app.usage.query import parse_time, parse_zone, top_users, usage_report

NOW = datetime(2025, 3, 10, 3, 0, tzinfo=UTC)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def ev(t: datetime, user: str, key: str, *, provider: str = "anthropic", model: str = "claude-sonnet-4-5",
       tokens: int = 100, cost: int | None = 1000) -> UsageEvent:
    return UsageEvent(user_id=user, access_key_id=key, provider=provider, model=model,  # type: ignore[arg-type]
                      input_tokens=tokens, output_tokens=tokens // 10, cost_usd_micros=cost, time=t)


EVENTS = [
    ev(utc(2025, 3, 9, 14, 30), "usr_a", "ak_a1", tokens=100),  # Seoul: 23:30 on the 9th
    ev(utc(2025, 3, 9, 15, 30), "usr_a", "ak_a2", provider="bedrock", model="claude-haiku-4-5",
       tokens=200, cost=500),  # Seoul: 00:30 on the 10th
    ev(utc(2025, 3, 10, 2, 0), "usr_b", "ak_b1", model="claude-mystery", tokens=1000, cost=None),
    ev(utc(2025, 3, 2, 12, 0), "usr_b", "ak_b1", tokens=10, cost=5000),  # a Sunday: the week of Feb 24
]


@pytest.fixture
async def db() -> Any:
    db = AsyncMongoMockClient(tz_aware=True)["query"]
    await UsageWriter(db).write_batch(EVENTS)
    await db["users"].insert_many([{"_id": "usr_a", "name": "Ada", "email": "ada@example.com"},
                                   {"_id": "usr_b", "name": "Bo", "email": None}])
    return db


def series_requests(report: dict[str, Any]) -> list[tuple[str, int]]:
    return [(p["start"], p["requests"]) for p in report["series"] if p["requests"]]


async def test_utc_days_with_breakdowns(db: Any) -> None:
    report = await usage_report(db, start=utc(2025, 3, 9), end=utc(2025, 3, 11), granularity="day", now=NOW)
    assert series_requests(report) == [("2025-03-09T00:00:00+00:00", 2), ("2025-03-10T00:00:00+00:00", 1)]
    assert report["totals"]["requests"] == 3
    assert report["totals"]["total_tokens"] == 100 + 10 + 200 + 20 + 1000 + 100
    assert report["totals"]["cost_usd_micros"] == 1500 and report["totals"]["cost_usd"] == 0.0015
    assert report["totals"]["cost_unknown_requests"] == 1
    assert {k: v["requests"] for k, v in report["by_provider"].items()} == {"anthropic": 2, "bedrock": 1}
    assert set(report["by_model"]) == {"claude-sonnet-4-5", "claude-haiku-4-5", "claude-mystery"}
    assert (report["from"], report["to"]) == ("2025-03-09T00:00:00+00:00", "2025-03-11T00:00:00+00:00")


async def test_seoul_days_are_built_from_hours(db: Any) -> None:
    seoul = ZoneInfo("Asia/Seoul")
    report = await usage_report(db, start=datetime(2025, 3, 9, tzinfo=seoul), end=datetime(2025, 3, 11, tzinfo=seoul),
                                granularity="day", tz="Asia/Seoul", now=NOW)
    assert series_requests(report) == [("2025-03-09T00:00:00+09:00", 1), ("2025-03-10T00:00:00+09:00", 2)]
    assert report["approximate"] is False


async def test_iso_weeks_start_on_monday(db: Any) -> None:
    report = await usage_report(db, start=utc(2025, 3, 1), end=utc(2025, 3, 12), granularity="week", now=NOW)
    assert series_requests(report) == [("2025-02-24T00:00:00+00:00", 1), ("2025-03-03T00:00:00+00:00", 2),
                                       ("2025-03-10T00:00:00+00:00", 1)]


@pytest.mark.parametrize("granularity", GRANULARITIES)
@pytest.mark.parametrize("tz", ["UTC", "Asia/Seoul", "America/New_York"])
async def test_totals_are_the_sum_of_the_series_in_every_granularity(db: Any, granularity: str, tz: str) -> None:
    # Minutes over the last events only (a 10-day range would be 14,400 points).
    start, count = (utc(2025, 3, 9, 12), 3) if granularity == "minute" else (utc(2025, 3, 1), 4)
    report = await usage_report(db, start=start, end=utc(2025, 3, 11), granularity=granularity,  # type: ignore[arg-type]
                                tz=tz, now=NOW, retention=Retention(minute_days=30))
    assert report["totals"]["requests"] == count
    for name in ("requests", "input_tokens", "cost_usd_micros", "cost_unknown_requests"):
        assert sum(p[name] for p in report["series"]) == report["totals"][name]


async def test_filters_choose_scope_provider_and_model(db: Any) -> None:
    async def requests(**filters: str) -> int:
        report = await usage_report(db, start=utc(2025, 3, 1), end=utc(2025, 3, 11), granularity="day", now=NOW,
                                    **filters)
        return report["totals"]["requests"]

    assert await requests(user_id="usr_a") == 2
    assert await requests(access_key_id="ak_a1") == 1
    assert await requests(access_key_id="ak_a1", user_id="usr_b") == 0  # not that user's key
    assert await requests(provider="bedrock") == 1
    assert await requests(user_id="usr_b", model="claude-mystery") == 1


async def test_default_range_is_the_last_24_hours_by_hour(db: Any) -> None:
    report = await usage_report(db, now=NOW)
    assert report["granularity"] == "hour" and report["totals"]["requests"] == 3
    assert report["series"][0]["start"] == "2025-03-09T03:00:00+00:00"


async def test_retention_and_size_limits_are_clear_errors(db: Any) -> None:
    with pytest.raises(InvalidRequest, match="minute buckets are kept 3 days"):
        await usage_report(db, start=utc(2025, 3, 1), end=NOW, granularity="minute", now=NOW)
    with pytest.raises(InvalidRequest, match="hour buckets are kept 93 days .*outside UTC"):
        await usage_report(db, start=utc(2024, 1, 1), end=NOW, granularity="month", tz="Asia/Seoul", now=NOW)
    await usage_report(db, start=utc(2024, 1, 1), end=NOW, granularity="month", now=NOW)  # UTC months: fine
    with pytest.raises(InvalidRequest, match="more than 10000 minute buckets"):
        await usage_report(db, start=utc(2025, 3, 1), end=NOW, granularity="minute", now=NOW,
                           retention=Retention(minute_days=100))
    with pytest.raises(InvalidRequest, match="before to"):
        await usage_report(db, start=NOW, end=NOW, now=NOW)


async def test_half_hour_zones_are_marked_approximate(db: Any) -> None:
    report = await usage_report(db, start=utc(2025, 3, 1), end=utc(2025, 3, 11), granularity="day",
                                tz="Asia/Kolkata", now=NOW)
    assert report["approximate"] is True and report["totals"]["requests"] == 4


def test_parameter_parsing() -> None:
    seoul = parse_zone("Asia/Seoul")
    assert parse_time("2025-03-10", seoul) == datetime(2025, 3, 10, tzinfo=seoul)
    assert parse_time("2025-03-10T01:00:00Z", seoul) == utc(2025, 3, 10, 1)
    assert parse_time(None) is None
    with pytest.raises(InvalidRequest, match="tz: unknown time zone"):
        parse_zone("Mars/Olympus")
    with pytest.raises(InvalidRequest, match="to: not an ISO 8601"):
        parse_time("yesterday", name="to")


@pytest.mark.parametrize(("metric", "order"), [("tokens", ["usr_b", "usr_a"]), ("cost", ["usr_b", "usr_a"]),
                                              ("requests", ["usr_a", "usr_b"])])
async def test_top_users_by_metric(db: Any, metric: str, order: list[str]) -> None:
    result = await top_users(db, start=utc(2025, 3, 1), end=utc(2025, 3, 11), metric=metric, now=NOW)  # type: ignore[arg-type]
    assert [u["user_id"] for u in result["users"]] == order
    ada = next(u for u in result["users"] if u["user_id"] == "usr_a")
    assert ada["name"] == "Ada" and ada["requests"] == 2 and ada["cost_usd_micros"] == 1500


async def test_top_users_limits_and_validates(db: Any) -> None:
    result = await top_users(db, start=utc(2025, 3, 1), end=utc(2025, 3, 11), limit=1, now=NOW)
    assert len(result["users"]) == 1
    # An old range is read from day buckets (hours have expired), rounded to whole days.
    old = await top_users(db, start=utc(2024, 6, 1, 5), end=utc(2025, 3, 3), now=NOW)
    assert old["from"] == "2024-06-01T00:00:00+00:00" and old["users"][0]["requests"] == 1
    for bad in ({"metric": "latency"}, {"limit": 0}):
        with pytest.raises(InvalidRequest):
            await top_users(db, now=NOW, **bad)  # type: ignore[arg-type]
