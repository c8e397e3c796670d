"""UsageReader: window totals (quota checks) and totals per scope id (top-N lists), over buckets
written by the real UsageWriter."""

from __future__ import annotations

from datetime import UTC, datetime

from app.store.usage_reads import UsageReader
from app.store.usage_write import UsageWriter
from tests.store.test_usage_write import make_events, new_db


async def test_reads_window_totals_and_totals_per_user() -> None:
    db = new_db()
    events = make_events()
    await UsageWriter(db).write_batch(events)
    repo = UsageReader(db)
    day = datetime(2025, 3, 10, tzinfo=UTC)
    totals = await repo.window_totals("user", "usr_1", [("day", day), ("month", datetime(2025, 3, 1, tzinfo=UTC))])
    monday_usr1 = [e for e in events if e.user_id == "usr_1" and e.time >= day]
    assert totals[("day", day)]["requests"] == len(monday_usr1)
    assert totals[("month", datetime(2025, 3, 1, tzinfo=UTC))]["requests"] == 3
    rows = await repo.totals_by_scope_id("user", "day", datetime(2025, 3, 1, tzinfo=UTC),
                                         datetime(2025, 4, 1, tzinfo=UTC))
    assert {row["_id"]: row["requests"] for row in rows} == {"usr_0": 3, "usr_1": 3}
