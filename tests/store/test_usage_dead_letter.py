"""UsageWriter when the data is the problem (issue 10): events BSON cannot encode, documents the
server refuses, a batch-wide encoding failure after part of the batch landed, a bucket update the
server refuses. Each time the rest is counted exactly once, the writer is never stuck on the batch,
and what cannot be stored is reported (UnwrittenEvents) or kept in ``usage_dead_letter``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import bson
import pytest
from bson.errors import InvalidDocument
from pymongo.errors import WriteError

from app.store.errors import UnwrittenEvents
from app.store.usage import DEAD_LETTER, EVENTS, ensure_usage_indexes
from app.store.usage_write import UsageWriter, dead_letter_document
from app.records.events import UsageEvent
from tests.store.test_usage_write import assert_exact, make_events, new_db
from tests.usage.faults import RefusingDatabase


async def test_unencodable_events_are_rejected_before_anything_is_written() -> None:
    db = new_db()
    repo = UsageWriter(db)
    events = make_events(6)
    events[1].model = "claude-\ud800"
    events[4].output_tokens = 2**70
    with pytest.raises(UnwrittenEvents) as caught:
        await repo.write_batch(events)
    assert caught.value.isolated and caught.value.events == [events[1], events[4]]
    reasons = [reason for _, reason in caught.value.rejected]
    assert reasons[0].startswith("UnicodeEncodeError") and reasons[1].startswith("OverflowError")
    good = [e for i, e in enumerate(events) if i not in (1, 4)]
    await assert_exact(db, good)
    more = make_events(2)
    await repo.write_batch(more)  # not stuck on the failed batch
    await assert_exact(db, good + more)


async def test_a_batch_of_only_bad_events_writes_nothing_and_leaves_no_fold() -> None:
    db = new_db()
    events = make_events(2)
    for e in events:
        e.notes = [object()]  # type: ignore[list-item]
    with pytest.raises(UnwrittenEvents):
        await UsageWriter(db).write_batch(events)
    assert await db["usage_folds"].count_documents({}) == 0


async def test_documents_the_server_refuses_are_reported_and_the_rest_counted() -> None:
    db = new_db()
    events = make_events(6)
    handle = RefusingDatabase(db, lambda doc: doc["_id"] == events[2].event_id)
    repo = UsageWriter(handle)
    with pytest.raises(UnwrittenEvents) as caught:
        await repo.write_batch(events)
    assert caught.value.isolated and caught.value.events == [events[2]]
    assert "121" in caught.value.rejected[0][1]
    await assert_exact(db, events[:2] + events[3:])
    # The same batch again (a lost acknowledgement of the refusal): nothing counted twice.
    with pytest.raises(UnwrittenEvents):
        await repo.write_batch(events)
    await assert_exact(db, events[:2] + events[3:])


class PartialInsert:
    """A database whose ``usage_events.insert_many`` stores the first ``landed`` documents and then
    fails to encode the next one (as a driver splitting a large batch into several messages does)."""

    def __init__(self, db: Any, landed: int) -> None:
        self._db, self.landed, self.armed = db, landed, True

    def __getitem__(self, name: str) -> Any:
        collection = self._db[name]
        if name != EVENTS:
            return collection
        outer = self

        class Collection:
            def __getattr__(self, attr: str) -> Any:
                return getattr(collection, attr)

            async def insert_many(self, docs: list[dict[str, Any]], ordered: bool = True) -> Any:
                if outer.armed:
                    outer.armed = False
                    await collection.insert_many(docs[:outer.landed], ordered=ordered)
                    raise InvalidDocument("cannot encode object: <injected>")
                return await collection.insert_many(docs, ordered=ordered)

        return Collection()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)


async def test_a_batch_wide_data_error_keeps_what_landed_and_returns_the_rest_for_splitting() -> None:
    db = new_db()
    events = make_events(6)
    repo = UsageWriter(PartialInsert(db, landed=4))
    with pytest.raises(UnwrittenEvents) as caught:
        await repo.write_batch(events)
    assert not caught.value.isolated and caught.value.events == events[4:]
    await assert_exact(db, events[:4])  # the 4 that landed are counted, once
    await repo.write_batch(events[4:])  # the caller's split: the rest are counted too
    await assert_exact(db, events)


class RefuseBucket:
    """``usage_buckets.update_one`` refuses (WriteError 2, BadValue) updates of bucket ``bucket_id``."""

    def __init__(self, db: Any, bucket_id: str) -> None:
        self._db, self.bucket_id = db, bucket_id

    def __getitem__(self, name: str) -> Any:
        collection = self._db[name]
        if name != "usage_buckets":
            return collection
        outer = self

        class Collection:
            def __getattr__(self, attr: str) -> Any:
                return getattr(collection, attr)

            async def update_one(self, filter_: dict[str, Any], update: Any, **kwargs: Any) -> Any:
                if filter_["_id"] == outer.bucket_id:
                    raise WriteError("Failed to apply $inc: overflow", code=2)
                return await collection.update_one(filter_, update, **kwargs)

        return Collection()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)


async def test_a_bucket_the_server_refuses_is_dead_lettered_and_the_fold_finishes() -> None:
    db = new_db()
    events = make_events(3)
    bucket_id = "month|2025-03-01T00:00Z|global||anthropic|claude-haiku-4-5"
    repo = UsageWriter(RefuseBucket(db, bucket_id))
    await repo.write_batch(events)
    await repo.write_batch(make_events(2))  # the writer goes on
    assert repo.dead_lettered_buckets == 2
    letters = await db[DEAD_LETTER].find({"kind": "bucket"}).to_list(None)
    assert {d["bucket_id"] for d in letters} == {bucket_id}
    assert letters[0]["counters"]["requests"] >= 1 and "overflow" in letters[0]["reason"]
    assert await db["usage_buckets"].count_documents({"_id": bucket_id}) == 0
    assert await db["usage_folds"].count_documents({"done": False}) == 0


@pytest.mark.parametrize("poison", [
    {"model": "claude-\ud800", "event_id": "id-\udfff"}, {"input_tokens": 2**90},
    {"notes": [object()]}, {"time": "not a time"}, {"model": "x" * 100_000},
])
async def test_any_event_can_be_dead_lettered_once(poison: dict[str, Any]) -> None:
    db = new_db()
    await ensure_usage_indexes(db, event_ttl_days=90)
    event = UsageEvent(user_id="usr_\ud800", access_key_id="ak_1", provider="anthropic", model="m")
    for name, value in poison.items():
        setattr(event, name, value)
    repo = UsageWriter(db)
    await repo.dead_letter(event, "UnicodeEncodeError: \\ud800")
    await repo.dead_letter(event, "again")  # a retry after a lost acknowledgement adds nothing
    letters = await db[DEAD_LETTER].find({}).to_list(None)
    assert len(letters) == 1 and letters[0]["reason"] == "UnicodeEncodeError: \\ud800"
    bson.encode(letters[0])
    assert len(letters[0]["event"]) <= 4000
    info = await db[DEAD_LETTER].index_information()
    assert info["expires_at_ttl"]["expireAfterSeconds"] == 0


def test_a_dead_letter_document_keeps_storable_fields_as_they_are() -> None:
    event = UsageEvent(user_id="usr_1", access_key_id="ak_1", provider="anthropic", model="claude-\ud800",
                       input_tokens=2**70, output_tokens=5)
    doc = dead_letter_document(event, "r", now=datetime.now(UTC), writer="w")
    assert doc["document"]["output_tokens"] == 5 and doc["document"]["user_id"] == "usr_1"
    assert doc["document"]["model"] == "'claude-\\ud800'" and doc["document"]["input_tokens"] == str(2**70)
    bson.encode(doc)
