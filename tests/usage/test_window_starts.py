"""WindowStarts (app/usage/ledger.py): the quota windows of an instant, computed once per minute,
equal ``floor`` / ``next_start`` at every instant, across minute, day, month and year ends, and
after the clock goes back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.records.buckets import floor, next_start
from app.usage.ledger import WindowStarts


def expected(t: datetime) -> dict[str, tuple[datetime, datetime]]:
    return {g: (floor(t, g), next_start(floor(t, g), g)) for g in ("minute", "day", "month")}


def test_every_instant_gets_the_windows_floor_gives() -> None:
    windows = WindowStarts()
    t = datetime(2025, 12, 31, 23, 58, 30, tzinfo=UTC)
    # 7 s steps across two minute ends, a day, month and year end; then back in time, then forward
    steps = [t + timedelta(seconds=7 * i) for i in range(40)]
    steps += [t - timedelta(days=40), t + timedelta(minutes=1, microseconds=-1), t + timedelta(minutes=1, seconds=31)]
    for instant in steps:
        assert windows.of(instant) == expected(instant), instant


def test_one_minute_computes_once() -> None:
    windows = WindowStarts()
    t = datetime(2025, 3, 9, 10, 15, tzinfo=UTC)
    first = windows.of(t)
    assert windows.of(t + timedelta(seconds=59, microseconds=999_999)) is first
    assert windows.of(t + timedelta(seconds=60)) is not first


def test_a_naive_instant_is_refused_as_floor_refuses_it() -> None:
    windows = WindowStarts()
    windows.of(datetime(2025, 3, 9, 10, 15, tzinfo=UTC))
    with pytest.raises(ValueError):
        windows.of(datetime(2025, 3, 9, 10, 15, 30))
