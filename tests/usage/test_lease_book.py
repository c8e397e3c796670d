"""LeaseBook on a mongomock store, at the edges the quota tests do not reach: a claim whose window
ended while it waited, the background sync loop stopping at shutdown even when its cancellation
arrives exactly as a store call completes (Python 3.11's ``asyncio.wait_for`` swallowed that one,
and the app's shutdown then waited forever), and per-counter locks that do not pile up."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from mongomock_motor import AsyncMongoMockClient

from app.store.leases import LeaseRepository
from app.usage.lease_book import WINDOW_ENDED, LeaseBook

NOW = datetime(2025, 1, 31, 23, 58, 30, tzinfo=UTC)
MINUTE_END = datetime(2025, 1, 31, 23, 59, tzinfo=UTC)


class GatedRepository(LeaseRepository):
    """The real repository; ``report`` waits for ``gate`` (set by the test) before it writes."""

    def __init__(self, db: Any) -> None:
        super().__init__(db)
        self.gate: asyncio.Future[None] | None = None
        self.reporting = asyncio.Event()

    async def report(self, counter_id: str, *, holder: str, spent: int) -> bool:
        if self.gate is not None:
            self.reporting.set()
            await self.gate
        return await super().report(counter_id, holder=holder, spent=spent)


@pytest.fixture
def db() -> Any:
    return AsyncMongoMockClient(tz_aware=True)["leases"]


async def test_a_claim_whose_window_ended_while_it_waited_is_window_ended_not_refused(db: Any) -> None:
    book = LeaseBook(LeaseRepository(db), clock=lambda: MINUTE_END + timedelta(milliseconds=5))
    result = await book.reserve("requests:key:ak_1:minute:20250131T2358", 1, limit=5, window_end=MINUTE_END)
    assert result is WINDOW_ENDED and result.window_ended
    assert await db["quota_counters"].count_documents({}) == 0  # nothing taken for a dead window


async def test_the_sync_loop_stops_when_cancelled_as_a_store_call_completes(db: Any) -> None:
    repo = GatedRepository(db)
    book = LeaseBook(repo, clock=lambda: NOW, sync_interval_s=0.001)
    lease = await book.reserve("tokens:key:ak_1:minute:20250131T2358", 10, limit=1000, window_end=MINUTE_END)
    assert not isinstance(lease, type(WINDOW_ENDED))
    loop = asyncio.get_running_loop()
    repo.gate = loop.create_future()
    book.start()  # its next sync reports the 10 units spent, and waits at the gate
    await asyncio.wait_for(repo.reporting.wait(), 5)
    # The store call completes and the loop is cancelled in the same turn of the event loop.
    repo.gate.set_result(None)
    repo.gate = None
    closing = asyncio.ensure_future(book.aclose())
    done, _ = await asyncio.wait({closing}, timeout=10)  # a guard against the hang, not a timing
    if not done:
        closing.cancel()
        pytest.fail("LeaseBook.aclose() did not return: its sync loop lost the cancellation")
    doc = await db["quota_counters"].find_one({})
    assert doc["leases"] == {} and doc["granted"] == 10  # the lease was given back at shutdown


async def test_counter_locks_live_only_while_held_or_awaited(db: Any) -> None:
    clock_now = [NOW]
    book = LeaseBook(LeaseRepository(db), clock=lambda: clock_now[0], slice_fraction=0.001)
    for minute in range(5):  # five windows, forty concurrent claims each, all going to the store
        end = MINUTE_END + timedelta(minutes=minute)
        results = await asyncio.gather(*(book.reserve(f"requests:key:ak_{i % 4}:minute:{minute}", 1, limit=100,
                                                      window_end=end) for i in range(40)))
        assert all(not getattr(r, "window_ended", False) and not hasattr(r, "used") for r in results)
        assert len(book._locks) == 0
        clock_now[0] += timedelta(minutes=1)
        await book.sync()
    await book.aclose()
