"""Resolution order per period (pure): user cap, else the lowest group cap, else the org default,
else none; null amounts fall through; shared budgets apply in addition."""

from __future__ import annotations

from datetime import UTC, datetime

from app.governance.periods import period_end, period_start, zone
from app.governance.resolve import LimitTable, caps_for, user_cap


def doc(limit_id: str, scope_key: str, period: str, amount: str | None) -> dict:
    kind, _, ident = scope_key.partition(":")
    scope = {"type": kind, **({"user_id": ident} if kind == "user" else {"rbac_group_id": ident} if ident else {})}
    return {"_id": limit_id, "scope_key": scope_key, "period": period, "amount": amount, "scope": scope}


TABLE = LimitTable([
    doc("spl_org_m", "organization", "monthly", "50000"),
    doc("spl_org_d", "organization", "daily", "5000"),
    doc("spl_con_d", "rbac_group:grp_con", "daily", "10000"),
    doc("spl_ml_d", "rbac_group:grp_ml", "daily", "3000"),
    doc("spl_u_d", "user:usr_a", "daily", "20000"),
    doc("spl_null", "user:usr_b", "daily", None),
    doc("spl_share", "rbac_group_shared:grp_ml", "weekly", "100000"),
])


def test_user_cap_first() -> None:
    assert user_cap(TABLE, "usr_a", ["grp_con"], "daily").spend_limit_id == "spl_u_d"


def test_most_restrictive_group_cap_even_if_higher_than_org() -> None:
    assert user_cap(TABLE, "usr_c", ["grp_con"], "daily").spend_limit_id == "spl_con_d"  # 100 $ > org's 50 $
    assert user_cap(TABLE, "usr_c", ["grp_con", "grp_ml"], "daily").spend_limit_id == "spl_ml_d"


def test_org_default_then_none() -> None:
    assert user_cap(TABLE, "usr_c", [], "daily").spend_limit_id == "spl_org_d"
    assert user_cap(TABLE, "usr_c", [], "weekly") is None


def test_null_amount_falls_through() -> None:
    assert user_cap(TABLE, "usr_b", [], "daily").spend_limit_id == "spl_org_d"


def test_caps_for_adds_shared_budgets_per_period() -> None:
    caps = caps_for(TABLE, "usr_c", ["grp_ml"])
    assert [(c.spend_limit_id, c.counter) for c in caps] == [
        ("spl_ml_d", ("user", "usr_c")), ("spl_org_m", ("user", "usr_c")), ("spl_share", ("group", "grp_ml"))]
    assert caps[0].limit_usd_micros == 30_000_000 and caps[0].alert_thresholds == (80, 100)


def test_periods_in_a_time_zone() -> None:
    tz = zone("Asia/Tokyo")
    now = datetime(2025, 3, 5, 16, 0, tzinfo=UTC)  # 01:00 on Thursday 6 March in Tokyo
    assert period_start(now, "daily", tz) == datetime(2025, 3, 5, 15, 0, tzinfo=UTC)
    assert period_start(now, "weekly", tz) == datetime(2025, 3, 2, 15, 0, tzinfo=UTC)  # Monday 3 March, Tokyo
    assert period_end(period_start(now, "monthly", tz), "monthly", tz) == datetime(2025, 3, 31, 15, 0, tzinfo=UTC)
    assert period_start(now, "daily") == datetime(2025, 3, 5, tzinfo=UTC)
