"""The embedded store (app/store/embedded.py) answers as plain mongomock does, looks only at the
documents its indexes name, expires TTL documents, follows in-place updates, and evicts past a cap."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from mongomock_motor import AsyncMongoMockClient
from pymongo import ASCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from app.store.embedded import EmbeddedClient
from app.store.mongo import open_store
from app.store.usage import BUCKETS, EVENTS, ensure_usage_indexes
from app.store.usage_reads import UsageReader
from app.store.usage_write import UsageWriter
from app.records.events import UsageEvent

T0 = datetime(2025, 3, 9, 14, 0, tzinfo=UTC)
INDEXES = [IndexModel([("scope", ASCENDING), ("scope_id", ASCENDING), ("start", ASCENDING)], name="s"),
           IndexModel([("key_hash", ASCENDING)], name="key_hash", unique=True),
           IndexModel([("expires_at", ASCENDING)], name="ttl", expireAfterSeconds=0)]


def documents() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for i in range(120):
        docs.append({"_id": f"d{i}", "scope": ("global", "user", "key")[i % 3], "scope_id": f"u{i % 7}",
                     "start": T0 + timedelta(minutes=i % 5), "key_hash": f"h{i}", "n": i,
                     "tags": ["a", f"t{i % 4}"] if i % 10 == 0 else None})
    docs.append({"_id": {"compound": 1}, "scope": "user", "scope_id": ["u1", "u2"], "key_hash": "hx", "n": -1})
    return docs


FILTERS: list[dict[str, Any]] = [
    {"_id": "d5"}, {"_id": {"$in": ["d1", "d77", "nope"]}}, {"_id": {"compound": 1}}, {"_id": "nope"},
    {"scope": "user", "scope_id": "u3"}, {"scope_id": "u1"}, {"scope_id": {"$eq": "u2"}},
    {"scope_id": {"$in": ["u1", "u4"]}, "n": {"$gte": 50}},
    {"scope": "key", "scope_id": "u2", "$or": [{"start": T0}, {"start": T0 + timedelta(minutes=3)}]},
    {"start": T0 + timedelta(minutes=2)}, {"start": (T0 + timedelta(minutes=2)).replace(tzinfo=None)},
    {"key_hash": "h42"}, {"key_hash": None}, {"tags": "a"}, {"n": {"$lt": 3}}, {"scope_id": {"$ne": "u1"}},
    {"$and": [{"scope_id": "u6"}, {"n": {"$gt": 20}}]}, {"$or": [{"key_hash": "h1"}, {"n": 7}]}, {},
]


async def both() -> tuple[Any, Any]:
    plain = AsyncMongoMockClient(tz_aware=True)["t"]["c"]
    indexed = EmbeddedClient(tz_aware=True)["t"]["c"]
    for coll in (plain, indexed):
        await coll.create_indexes(INDEXES)
        await coll.insert_many(documents())
    return plain, indexed


@pytest.mark.parametrize("filter_", FILTERS, ids=[str(f)[:60] for f in FILTERS])
async def test_find_count_and_aggregate_answer_as_plain_mongomock(filter_: dict[str, Any]) -> None:
    plain, indexed = await both()
    assert await indexed.find(filter_).to_list(None) == await plain.find(filter_).to_list(None)
    assert await indexed.count_documents(filter_) == await plain.count_documents(filter_)
    pipeline = [{"$match": filter_}, {"$group": {"_id": "$scope", "n": {"$sum": "$n"}}}, {"$sort": {"_id": 1}}]
    assert await indexed.aggregate(pipeline).to_list(None) == await plain.aggregate(pipeline).to_list(None)


async def test_an_equality_lookup_examines_only_the_indexed_documents() -> None:
    _, indexed = await both()
    store = indexed._store
    before = store.examined
    assert (await indexed.find_one({"key_hash": "h42"}))["n"] == 42
    await indexed.update_one({"_id": "d9", "n": 9}, {"$inc": {"n": 1}})
    # One candidate for the find, one for the update, one for the unique check of the updated
    # document: 3, where plain mongomock looks at all 121 documents for each.
    assert store.examined - before == 3


async def test_in_place_updates_move_a_document_between_index_entries() -> None:
    plain, indexed = await both()
    for coll in (plain, indexed):
        await coll.update_one({"_id": "d3"}, {"$set": {"scope_id": "moved"}})
        await coll.update_many({"scope_id": "u2"}, {"$set": {"scope_id": "u5"}})
        await coll.find_one_and_update({"key_hash": "h8"}, {"$set": {"key_hash": "h8b"}})
        await coll.replace_one({"_id": "d4"}, {"scope": "key", "scope_id": "replaced", "key_hash": "h4"})
        await coll.delete_many({"scope_id": "u6"})
    for filter_ in ({"scope_id": "moved"}, {"scope_id": "u3"}, {"scope_id": "u2"}, {"scope_id": "u5"},
                    {"key_hash": "h8"}, {"key_hash": "h8b"}, {"scope_id": "replaced"}, {"scope_id": "u6"}):
        assert await indexed.find(filter_).to_list(None) == await plain.find(filter_).to_list(None), filter_


async def test_unique_indexes_hold_on_insert_and_update() -> None:
    _, indexed = await both()
    with pytest.raises(DuplicateKeyError):
        await indexed.insert_one({"_id": "new", "key_hash": "h1"})
    with pytest.raises(DuplicateKeyError):
        await indexed.update_one({"_id": "d2"}, {"$set": {"key_hash": "h3"}})
    assert (await indexed.find_one({"key_hash": "h2"}))["_id"] == "d2"  # rolled back, still indexed
    assert await indexed.find_one({"key_hash": "h3"}) is not None
    with pytest.raises(DuplicateKeyError):
        await indexed.insert_one({"_id": "d1"})


async def test_ttl_documents_expire_when_due_and_a_moved_deadline_is_honoured() -> None:
    coll = EmbeddedClient(tz_aware=True)["t"]["c"]
    await coll.create_indexes(INDEXES[2:])
    now = datetime.now(UTC)
    await coll.insert_many([{"_id": "past", "expires_at": now - timedelta(seconds=1)},
                            {"_id": "later", "expires_at": now + timedelta(hours=1)},
                            {"_id": "never"}])
    assert {d["_id"] for d in await coll.find().to_list(None)} == {"later", "never"}
    await coll.update_one({"_id": "later"}, {"$set": {"expires_at": now - timedelta(seconds=1)}})
    await coll.update_one({"_id": "never"}, {"$set": {"expires_at": now + timedelta(days=1)}})
    assert {d["_id"] for d in await coll.find().to_list(None)} == {"never"}


async def test_a_capped_collection_evicts_the_oldest_documents() -> None:
    coll = EmbeddedClient(caps={"c": 3}, tz_aware=True)["t"]["c"]
    await coll.create_indexes(INDEXES)
    for i in range(5):
        await coll.insert_one({"_id": i, "scope_id": "u", "key_hash": f"h{i}"})
    assert [d["_id"] for d in await coll.find({"scope_id": "u"}).to_list(None)] == [2, 3, 4]
    assert await coll.find_one({"key_hash": "h0"}) is None
    await coll.insert_one({"_id": 9, "key_hash": "h0"})  # the evicted value is free again


async def test_usage_writes_on_the_embedded_store_count_every_event_once() -> None:
    store = open_store(None, "usage")
    await ensure_usage_indexes(store.db, event_ttl_days=90)
    repo, reader = UsageWriter(store.db), UsageReader(store.db)
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)  # recent: minute buckets expire
    events = [UsageEvent(time=hour + timedelta(seconds=i), user_id=f"u{i % 2}", access_key_id=f"k{i % 4}",
                         provider="anthropic", model="claude-sonnet-4-5", input_tokens=10, output_tokens=1)
              for i in range(40)]
    await repo.write_batch(events[:30])
    await repo.write_batch(events[:30])  # a retried batch changes nothing
    await repo.write_batch(events[30:])
    totals = await reader.window_totals("user", "u1", [("hour", hour)])
    assert totals[("hour", hour)]["requests"] == 20 and totals[("hour", hour)]["input_tokens"] == 200
    assert await store.db[EVENTS].count_documents({}) == 40
    assert await store.db[BUCKETS].count_documents({"granularity": "minute", "scope": "global"}) == 1
