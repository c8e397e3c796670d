"""Bucket maths: period boundaries in UTC and in IANA zones, and folding events into buckets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.records.buckets import (
    GRANULARITIES,
    Retention,
    TooManyBuckets,
    bucket_keys,
    event_counters,
    floor,
    fold,
    next_start,
    starts,
)
from app.records.events import UsageEvent

SEOUL = ZoneInfo("Asia/Seoul")
NEW_YORK = ZoneInfo("America/New_York")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(("t", "granularity", "start", "after"), [
    (utc(2025, 3, 9, 14, 27, 59, 999999), "minute", utc(2025, 3, 9, 14, 27), utc(2025, 3, 9, 14, 28)),
    (utc(2025, 3, 9, 14, 27, 5), "hour", utc(2025, 3, 9, 14), utc(2025, 3, 9, 15)),
    (utc(2025, 12, 31, 23, 59, 59), "day", utc(2025, 12, 31), utc(2026, 1, 1)),
    # ISO weeks start on Monday: Sunday 2025-03-09 belongs to the week of Monday 2025-03-03.
    (utc(2025, 3, 9, 23, 0), "week", utc(2025, 3, 3), utc(2025, 3, 10)),
    (utc(2025, 3, 10, 0, 0), "week", utc(2025, 3, 10), utc(2025, 3, 17)),
    # A week that spans a year end (ISO week 1 of 2026 starts Monday 2025-12-29).
    (utc(2026, 1, 2, 12), "week", utc(2025, 12, 29), utc(2026, 1, 5)),
    (utc(2025, 1, 31, 23, 59), "month", utc(2025, 1, 1), utc(2025, 2, 1)),
    (utc(2025, 12, 15), "month", utc(2025, 12, 1), utc(2026, 1, 1)),
    (utc(2025, 2, 28, 23, 59), "day", utc(2025, 2, 28), utc(2025, 3, 1)),
    # Leap day.
    (utc(2024, 2, 29, 12), "day", utc(2024, 2, 29), utc(2024, 3, 1)),
    (utc(2024, 2, 29, 12), "month", utc(2024, 2, 1), utc(2024, 3, 1)),
    (utc(2024, 2, 28, 23, 59), "day", utc(2024, 2, 28), utc(2024, 2, 29)),
])
def test_utc_boundaries(t: datetime, granularity: str, start: datetime, after: datetime) -> None:
    assert floor(t, granularity) == start  # type: ignore[arg-type]
    assert next_start(start, granularity) == after  # type: ignore[arg-type]


def test_seoul_day_spans_two_utc_days() -> None:
    # Seoul is UTC+9 all year: the local day 2025-03-10 is 2025-03-09T15:00Z .. 2025-03-10T15:00Z.
    morning = utc(2025, 3, 9, 16, 30)  # 01:30 on the 10th in Seoul, still the 9th in UTC
    evening = utc(2025, 3, 10, 14, 59)  # 23:59 on the 10th in Seoul
    assert floor(morning, "day", SEOUL) == floor(evening, "day", SEOUL) == utc(2025, 3, 9, 15)
    assert floor(morning, "day") != floor(evening, "day")
    assert next_start(utc(2025, 3, 9, 15), "day", SEOUL) == utc(2025, 3, 10, 15)
    # And the Seoul month of March begins on the last evening of February in UTC.
    assert floor(utc(2025, 3, 1, 0), "month", SEOUL) == utc(2025, 2, 28, 15)
    assert floor(utc(2025, 3, 3, 10), "week", SEOUL) == utc(2025, 3, 2, 15)  # Monday 00:00 KST


def test_dst_days_last_23_and_25_hours() -> None:
    spring = floor(utc(2025, 3, 9, 12), "day", NEW_YORK)
    assert next_start(spring, "day", NEW_YORK) - spring == timedelta(hours=23)
    autumn = floor(utc(2025, 11, 2, 12), "day", NEW_YORK)
    assert next_start(autumn, "day", NEW_YORK) - autumn == timedelta(hours=25)


def test_local_midnight_in_a_dst_gap_starts_the_day_at_the_transition() -> None:
    # Santiago skips 00:00-01:00 local on 2024-09-08 (clocks go from -04 to -03 at midnight).
    santiago = ZoneInfo("America/Santiago")
    start = floor(utc(2024, 9, 8, 12), "day", santiago)
    assert start == utc(2024, 9, 8, 4)
    assert start.astimezone(santiago).hour == 1  # the first local instant of that day


def test_starts_covers_the_range_and_is_bounded() -> None:
    points = starts(utc(2025, 1, 1, 10, 30), utc(2025, 1, 1, 13), "hour")
    assert points == [utc(2025, 1, 1, 10), utc(2025, 1, 1, 11), utc(2025, 1, 1, 12)]
    assert starts(utc(2025, 1, 1), utc(2025, 4, 1), "month") == [utc(2025, 1, 1), utc(2025, 2, 1), utc(2025, 3, 1)]
    with pytest.raises(TooManyBuckets):
        starts(utc(2025, 1, 1), utc(2025, 1, 2), "minute", limit=100)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        floor(datetime(2025, 1, 1), "day")


zones = st.sampled_from(["UTC", "Asia/Seoul", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe",
                         "Europe/London", "America/Santiago", "Pacific/Chatham"])
instants = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2040, 1, 1)).map(
    lambda d: d.replace(tzinfo=UTC))


@settings(max_examples=300, deadline=None)
@given(t=instants, granularity=st.sampled_from(GRANULARITIES), zone=zones)
def test_every_instant_is_in_exactly_its_bucket(t: datetime, granularity: str, zone: str) -> None:
    tz = ZoneInfo(zone)
    start = floor(t, granularity, tz)  # type: ignore[arg-type]
    end = next_start(start, granularity, tz)  # type: ignore[arg-type]
    assert start <= t < end
    assert floor(start, granularity, tz) == start  # type: ignore[arg-type]
    if granularity in ("day", "week", "month"):
        local = start.astimezone(tz)
        assert (local.hour, local.minute) in ((0, 0), (1, 0), (0, 30))  # midnight, or a DST gap's end


def event(**overrides: object) -> UsageEvent:
    values: dict[str, object] = dict(user_id="usr_1", access_key_id="ak_1", provider="anthropic",
                                     model="claude-sonnet-4-5", input_tokens=10, output_tokens=5,
                                     cache_creation_input_tokens=7, cache_creation_1h_input_tokens=2,
                                     cache_read_input_tokens=100, cost_usd_micros=123,
                                     time=utc(2025, 3, 9, 16, 30, 12))
    values.update(overrides)
    return UsageEvent(**values)  # type: ignore[arg-type]


def test_an_event_lands_in_five_granularities_times_three_scopes() -> None:
    keys = bucket_keys(event())
    assert len(keys) == 15
    assert {k.scope for k in keys} == {"global", "user", "key"}
    day_user = next(k for k in keys if k.granularity == "day" and k.scope == "user")
    assert day_user.id == "day|2025-03-09T00:00Z|user|usr_1|anthropic|claude-sonnet-4-5"
    assert len(bucket_keys(event(user_id=None, access_key_id=None))) == 5


def test_counters_mark_errors_fallbacks_and_unknown_cost() -> None:
    counters = event_counters(event(status=529, fallback_reason="overloaded", cost_usd_micros=None))
    assert counters["errors"] == 1 and counters["fallbacks"] == 1
    assert counters["cost_unknown_requests"] == 1 and counters["cost_usd_micros"] == 0
    assert event_counters(event(status=200))["errors"] == 0


def test_fold_sums_per_bucket() -> None:
    events = [event(), event(), event(access_key_id="ak_2", time=utc(2025, 3, 9, 16, 31))]
    folded = fold(events)
    minute_global = [c for k, c in folded.values() if k.granularity == "minute" and k.scope == "global"]
    assert sorted(c["requests"] for c in minute_global) == [1, 2]
    _, day_user = folded["day|2025-03-09T00:00Z|user|usr_1|anthropic|claude-sonnet-4-5"]
    assert day_user["requests"] == 3 and day_user["cache_read_input_tokens"] == 300
    assert day_user["cost_usd_micros"] == 369


def test_retention_expires_minutes_and_hours_only() -> None:
    retention = Retention(minute_days=3, hour_days=93)
    start = utc(2025, 1, 1)
    assert retention.expires_at("minute", start) == utc(2025, 1, 4)
    assert retention.expires_at("hour", start) == start + timedelta(days=93)
    assert all(retention.expires_at(g, start) is None for g in ("day", "week", "month"))
