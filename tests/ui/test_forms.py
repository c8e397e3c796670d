"""app/ui/forms.py: query strings and forms -> values, with InvalidRequest for bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.errors import InvalidRequest
from app.ui.forms import limits_patch, page_number, usage_query, user_status

NOW = datetime(2025, 3, 10, 12, 30, tzinfo=UTC)


def test_usage_query_defaults_to_24h_hourly_utc() -> None:
    q = usage_query({}, NOW)
    assert (q.range, q.start, q.end, q.granularity, q.tz) == ("24h", NOW - timedelta(hours=24), NOW, "hour", "UTC")


def test_usage_query_preset_ranges_pick_their_granularity() -> None:
    assert usage_query({"range": "30d"}, NOW).granularity == "day"
    assert usage_query({"range": "7d", "granularity": "hour"}, NOW).granularity == "hour"


def test_custom_range_in_zone_with_inclusive_end_date() -> None:
    q = usage_query({"range": "custom", "from": "2025-03-01", "to": "2025-03-02", "tz": "Asia/Seoul"}, NOW)
    assert q.start == datetime(2025, 2, 28, 15, tzinfo=UTC)
    assert q.end == datetime(2025, 3, 2, 15, tzinfo=UTC)
    assert q.granularity == "hour" and q.auto  # 2 days: hours, chosen by the range
    assert q.params() == {"range": "custom", "granularity": "", "tz": "Asia/Seoul",
                          "from": "2025-03-01", "to": "2025-03-02"}


@pytest.mark.parametrize("params,granularity,coarsened_from", [
    ({"range": "24h", "granularity": "minute"}, "hour", "minute"),  # not 1,440 hairline bars
    ({"range": "7d", "granularity": "hour"}, "hour", None),  # 168 bars: still fine
    ({"range": "30d", "granularity": "hour"}, "day", "hour"),
    ({"range": "custom", "from": "2025-01-01", "to": "2025-03-01"}, "day", None),
    ({"range": "custom", "from": "2024-01-01", "to": "2025-03-01"}, "week", None),
    ({"range": "custom", "from": "2020-01-01", "to": "2025-03-01"}, "month", None),
    ({"range": "custom", "from": "2024-01-01", "to": "2025-03-01", "granularity": "day"}, "week", "day"),
])
def test_granularity_follows_the_range(params: dict[str, str], granularity: str, coarsened_from: str | None) -> None:
    q = usage_query(params, NOW)
    assert (q.granularity, q.coarsened_from) == (granularity, coarsened_from)
    assert q.granularity in q.granularities and "minute" not in usage_query({"range": "24h"}, NOW).granularities


def test_remembered_zone_is_the_default_and_the_query_string_wins() -> None:
    assert usage_query({}, NOW, default_tz="Asia/Seoul").tz == "Asia/Seoul"
    assert usage_query({"tz": "Europe/Berlin"}, NOW, default_tz="Asia/Seoul").tz == "Europe/Berlin"


def test_every_iana_zone_is_offered() -> None:
    from zoneinfo import available_timezones

    from app.ui.forms import all_zones
    zones = all_zones()
    assert zones[0] == "UTC" and len(zones) > 400
    assert {"Asia/Seoul", "America/Argentina/Buenos_Aires", "Asia/Kolkata", "Pacific/Chatham"} <= set(zones)
    assert set(zones) == {z for z in available_timezones() if not z.startswith(("posix/", "right/"))}


def test_custom_range_without_from_starts_7_days_back_and_ends_now() -> None:
    q = usage_query({"range": "custom"}, NOW)
    assert (q.start, q.end, q.from_text) == (NOW - timedelta(days=7), NOW, "2025-03-03")


@pytest.mark.parametrize("params,message", [
    ({"range": "1y"}, "range: must be one of"), ({"tz": "Nowhere/City"}, "unknown time zone"),
    ({"granularity": "second"}, "granularity"), ({"range": "custom", "from": "March"}, "from: not an ISO"),
    ({"range": "custom", "from": "2025-03-05", "to": "2025-03-01"}, "from: must be before to"),
])
def test_usage_query_rejects(params: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        usage_query(params, NOW)


def test_limits_patch_sets_every_limit_and_clears_empty_ones() -> None:
    patch = limits_patch({"tokens_per_day": "1,000,000", "cost_usd_per_day": "2", "requests_per_minute": " "})
    assert patch["tokens_per_day"] == 1_000_000 and isinstance(patch["tokens_per_day"], int)
    assert patch["cost_usd_per_day"] == 2.0 and isinstance(patch["cost_usd_per_day"], float)
    assert patch["requests_per_minute"] is None and patch["tokens_per_month"] is None


def test_limits_patch_names_the_bad_field() -> None:
    with pytest.raises(InvalidRequest, match="limits.tokens_per_minute: not a number"):
        limits_patch({"tokens_per_minute": "ten"})


def test_status_and_page() -> None:
    assert user_status("") is None and user_status("active") == "active"
    assert page_number(None) == 1 and page_number("3") == 3
    with pytest.raises(InvalidRequest):
        user_status("gone")
    with pytest.raises(InvalidRequest):
        page_number("-1")
