"""UsageWriter: the idempotent write protocol (insert -> fold -> mark) and the sweep.

Failures are injected at every single write of a batch, both before the write (outage) and after
it was applied (lost acknowledgement), and each time the buckets must equal the events exactly.
"""

from __future__ import annotations

import asyncio
import os
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from mongomock_motor import AsyncMongoMockClient
from pymongo import UpdateOne
from pymongo.errors import AutoReconnect, BulkWriteError, DuplicateKeyError

from app.store.usage import EVENTS, FOLDS, ensure_usage_indexes
from app.store.usage_write import UsageWriter
from app.records.buckets import COUNTERS, GRANULARITIES, Retention, event_counters
from app.records.events import UsageEvent
from tests.usage.faults import Faults

T0 = datetime(2025, 3, 9, 23, 59, 30, tzinfo=UTC)  # near day, week (Sunday) and minute edges


def new_db() -> Any:
    return AsyncMongoMockClient(tz_aware=True)["usage_test"]


class BulkCapable:
    """Gives a mongomock database the unordered ``bulk_write`` of a real server (mongomock-motor's
    cannot build UpdateOne on pymongo >= 4.11): each UpdateOne goes through ``update_one`` of the
    wrapped (possibly fault-injected) collection; duplicate keys are reported as pymongo does, in a
    BulkWriteError after the other operations ran; any other error stops the batch."""

    def __init__(self, db: Any) -> None:
        self._db = db

    def __getitem__(self, name: str) -> Any:
        return _BulkCollection(self._db[name])

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)


class _BulkCollection:
    def __init__(self, collection: Any) -> None:
        self._collection = collection

    def __getattr__(self, name: str) -> Any:
        return getattr(self._collection, name)

    async def bulk_write(self, requests: list[UpdateOne], ordered: bool = True) -> None:
        assert not ordered
        errors = []
        for index, op in enumerate(requests):
            doc = op._doc
            try:
                await self._collection.update_one(op._filter, doc, upsert=op._upsert)
            except DuplicateKeyError:
                errors.append({"index": index, "code": 11000, "errmsg": "E11000 duplicate key"})
        if errors:
            raise BulkWriteError({"writeErrors": errors, "writeConcernErrors": []})


def later() -> datetime:
    """A sweeper's clock one minute ahead: stored times have millisecond precision, so a sweep
    with ``grace_s=0`` in the same millisecond as the journal entry would not see it yet."""
    return datetime.now(UTC) + timedelta(minutes=1)


def make_events(n: int = 6, *, start: datetime = T0) -> list[UsageEvent]:
    events = []
    for i in range(n):
        events.append(UsageEvent(
            user_id=f"usr_{i % 2}", access_key_id=f"ak_{i % 3}", provider="anthropic" if i % 4 else "bedrock",
            model=("claude-sonnet-4-5", "claude-haiku-4-5")[i % 2], input_tokens=10 + i, output_tokens=3 * i,
            cache_creation_input_tokens=100 * i, cache_creation_1h_input_tokens=10 * i,
            cache_read_input_tokens=1000 + i, status=200 if i % 5 else 529,
            fallback_reason="overloaded" if i % 5 == 0 else None, cost_usd_micros=None if i == 3 else 7 * i,
            time=start + timedelta(seconds=20 * i)))
    return events


async def bucket_sums(db: Any) -> dict[tuple[str, str, str], dict[str, int]]:
    """(granularity, scope, scope_id) -> counters summed over every bucket."""
    sums: dict[tuple[str, str, str], dict[str, int]] = defaultdict(lambda: dict.fromkeys(COUNTERS, 0))
    async for doc in db["usage_buckets"].find({}):
        total = sums[(doc["granularity"], doc["scope"], doc["scope_id"])]
        for name in COUNTERS:
            total[name] += doc[name]
    return dict(sums)


def expected_sums(events: list[UsageEvent]) -> dict[tuple[str, str, str], dict[str, int]]:
    sums: dict[tuple[str, str, str], dict[str, int]] = defaultdict(lambda: dict.fromkeys(COUNTERS, 0))
    for e in events:
        for granularity in GRANULARITIES:
            for scope, scope_id in (("global", ""), ("user", e.user_id), ("key", e.access_key_id)):
                total = sums[(granularity, scope, scope_id)]  # type: ignore[index]
                for name, value in event_counters(e).items():
                    total[name] += value
    return dict(sums)


async def assert_exact(db: Any, events: list[UsageEvent]) -> None:
    assert await bucket_sums(db) == expected_sums(events)
    assert await db[EVENTS].count_documents({}) == len(events)
    assert await db[FOLDS].count_documents({"done": False}) == 0


async def test_a_batch_lands_in_events_and_every_bucket() -> None:
    db = new_db()
    events = make_events()
    await UsageWriter(db, retention=Retention(minute_days=3, hour_days=93)).write_batch(events)
    await assert_exact(db, events)
    minute = await db["usage_buckets"].find_one({"granularity": "minute"})
    assert minute["expires_at"] == minute["start"] + timedelta(days=3)
    assert "expires_at" not in await db["usage_buckets"].find_one({"granularity": "month"})
    # The Sunday-evening event and the Monday ones are in different ISO weeks.
    weeks = {doc["start"] async for doc in db["usage_buckets"].find({"granularity": "week"})}
    assert weeks == {datetime(2025, 3, 3, tzinfo=UTC), datetime(2025, 3, 10, tzinfo=UTC)}


async def count_writes(events: list[UsageEvent]) -> int:
    faults = Faults()
    await UsageWriter(faults.wrap(new_db())).write_batch(events)
    return faults.writes


@pytest.mark.parametrize("bulk", [False, True], ids=["update_one", "bulk_write"])
@pytest.mark.parametrize("mode", ["outage", "lost_ack"])
async def test_a_retried_batch_counts_each_event_once_whichever_write_fails(mode: str, bulk: bool) -> None:
    events = make_events(3)
    total_writes = await count_writes(events)
    assert total_writes > 10  # journal + insert + one upsert per bucket + done
    for failing in range(total_writes):
        db, faults = new_db(), Faults()
        if mode == "outage":
            faults.fail_after = failing  # this write never reaches the store
        else:
            faults.lose_ack_at = failing  # this write lands, but the writer sees an error
        faulty = faults.wrap(db)
        repo = UsageWriter(BulkCapable(faulty) if bulk else faulty)
        with pytest.raises(AutoReconnect):
            await repo.write_batch(events)
        faults.heal()
        await repo.write_batch(events)
        await assert_exact(db, events)


async def test_a_crash_mid_fold_is_finished_by_the_sweep_exactly_once() -> None:
    events = make_events(3)
    total_writes = await count_writes(events)
    # Writes 0 and 1 journal the fold and insert the events: a crash before the insert lands loses
    # the batch (it only ever existed in that process's memory).
    for crash_at in range(2, total_writes):
        db, faults = new_db(), Faults()
        faults.fail_after = crash_at
        crashed = UsageWriter(faults.wrap(db), writer_id="crashed")
        with pytest.raises(AutoReconnect):
            await crashed.write_batch(events)
        # The process is gone; another replica sweeps after the grace period.
        survivor = UsageWriter(db, writer_id="survivor", clock=later)
        swept = await survivor.sweep(grace_s=0)
        assert swept == len(events)
        await assert_exact(db, events)
        assert await survivor.sweep(grace_s=0) == 0


async def test_a_crash_before_the_events_land_loses_only_that_batch() -> None:
    db, faults = new_db(), Faults()
    faults.fail_after = 1  # the fold is journaled, the insert never happens
    with pytest.raises(AutoReconnect):
        await UsageWriter(faults.wrap(db), writer_id="crashed").write_batch(make_events())
    assert await UsageWriter(db, clock=later).sweep(grace_s=0) == 0
    await assert_exact(db, [])


async def test_the_sweep_leaves_recent_unfinished_folds_alone() -> None:
    db, faults = new_db(), Faults()
    faults.fail_after = 3
    with pytest.raises(AutoReconnect):
        await UsageWriter(faults.wrap(db), writer_id="slow").write_batch(make_events())
    assert await UsageWriter(db).sweep(grace_s=3600) == 0
    assert await db[FOLDS].count_documents({"done": False}) == 1


async def test_a_sweep_racing_the_writers_own_retry_still_counts_once() -> None:
    events = make_events()
    db, faults = new_db(), Faults()
    faults.fail_after = 7
    writer = UsageWriter(faults.wrap(db), writer_id="w")
    with pytest.raises(AutoReconnect):
        await writer.write_batch(events)
    faults.heal()
    sweeper = UsageWriter(db, writer_id="s", clock=later)
    await asyncio.gather(writer.write_batch(events), sweeper.sweep(grace_s=0))
    await assert_exact(db, events)


async def test_events_already_stored_by_another_batch_are_counted_by_that_batch_only() -> None:
    db = new_db()
    e1, e2, e3 = make_events(3)
    repo = UsageWriter(db)
    await repo.write_batch([e1, e2])
    await repo.write_batch([e2, e3])  # e2 again (e.g. a caller that re-sent it)
    await assert_exact(db, [e1, e2, e3])


@pytest.mark.parametrize("bulk", [False, True], ids=["update_one", "bulk_write"])
async def test_two_writers_creating_the_same_buckets_at_once_both_count(bulk: bool) -> None:
    db = new_db()
    a, b = make_events(4), make_events(4)
    handle = BulkCapable(db) if bulk else db
    await asyncio.gather(UsageWriter(handle).write_batch(a), UsageWriter(handle).write_batch(b))
    await assert_exact(db, a + b)


MONGODB_URL = os.environ.get("PROXY_TEST_MONGODB_URL")


@pytest.mark.mongodb
@pytest.mark.skipif(not MONGODB_URL, reason="PROXY_TEST_MONGODB_URL is not set")
async def test_real_mongodb_bulk_path_retry_and_sweep() -> None:
    from motor.motor_asyncio import AsyncIOMotorClient

    client = AsyncIOMotorClient(MONGODB_URL, tz_aware=True, retryWrites=False)
    db = client[f"usage_test_{os.getpid()}"]
    try:
        await ensure_usage_indexes(db, event_ttl_days=90)
        events = make_events(20)
        faults = Faults()
        faults.fail_after = 3
        repo = UsageWriter(faults.wrap(db), writer_id="real")
        with pytest.raises(AutoReconnect):
            await repo.write_batch(events)
        faults.heal()
        await repo.write_batch(events)
        await repo.write_batch(events)  # a repeat of a finished batch changes nothing
        more = make_events(5, start=T0 + timedelta(hours=1))
        crash_faults = Faults()
        crash_faults.fail_after = 2
        crashed = UsageWriter(crash_faults.wrap(db), writer_id="crashed")
        with pytest.raises(AutoReconnect):
            await crashed.write_batch(more)
        await UsageWriter(db, clock=later).sweep(grace_s=0)
        await assert_exact(db, events + more)
    finally:
        await client.drop_database(db.name)
        client.close()
