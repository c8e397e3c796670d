"""Usage at rest: raw events (``usage_events``), time-bucket aggregates (``usage_buckets``) and
the write protocol's fold journal (``usage_folds``).

Write protocol (``UsageRepository.write_batch``), idempotent per event without transactions, so it
runs on DocumentDB 5.0 (no ``$merge``, no transactions, no retryable writes). Every batch gets a
*fold id* ``<writer>:<seq>``: ``writer`` is random per process, ``seq`` counts that process's batches.

1. Journal the fold: ``usage_folds`` gets ``{_id: fold id, done: false, started_at}``.
2. Insert the events (``_id`` = event id) carrying ``fold_id``. A duplicate key means an earlier
   attempt landed it; only events stored under *this* fold id belong to the fold.
3. Fold them into buckets: one upsert per bucket document, applied only if the bucket has not seen
   this fold yet: filter ``folds.<writer>`` missing or ``< seq``, update ``$inc`` counters and
   ``$set folds.<writer> = seq``. A writer finishes a fold before it starts the next, so per bucket
   and writer, "seq not yet applied" is exactly ``folds.<writer> < seq``; a retried or concurrent
   application of the same fold matches nothing and changes nothing.
4. Mark the fold ``done``.

A crash after step 1 leaves a fold not done; ``sweep()`` (any replica, after a grace period)
re-reads its events by fold id and re-applies step 3 with the *same* fold id, which completes the
buckets the crash missed and skips those already counted. See docs/usage.md for the guarantee and
the remaining window.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ASCENDING, IndexModel, UpdateOne
from pymongo.errors import BulkWriteError, DuplicateKeyError, OperationFailure

from app.usage.buckets import COUNTERS, Granularity, Retention, Scope, fold
from app.usage.events import UsageEvent

log = logging.getLogger(__name__)

EVENTS, BUCKETS, FOLDS = "usage_events", "usage_buckets", "usage_folds"
FOLD_KEEP_DAYS = 7  # finished fold records are kept this long (for inspection), then expire
DUPLICATE_KEY = 11000
_INDEX_OPTIONS_CONFLICT = (85, 86)
_EVENT_FIELDS = tuple(f.name for f in dataclasses.fields(UsageEvent))


def usage_indexes(event_ttl_days: int) -> dict[str, list[IndexModel]]:
    """Indexes for both collections (TTL: raw events after ``event_ttl_days``; buckets at ``expires_at``)."""
    return {
        EVENTS: [IndexModel([("time", ASCENDING)], name="time_ttl", expireAfterSeconds=event_ttl_days * 86400),
                 IndexModel([("fold_id", ASCENDING)], name="fold_id")],
        FOLDS: [IndexModel([("done", ASCENDING), ("started_at", ASCENDING)], name="done_started"),
                IndexModel([("expires_at", ASCENDING)], name="expires_at_ttl", expireAfterSeconds=0)],
        BUCKETS: [IndexModel([("scope", ASCENDING), ("scope_id", ASCENDING), ("granularity", ASCENDING),
                              ("start", ASCENDING)], name="scope_granularity_start"),
                  IndexModel([("scope", ASCENDING), ("granularity", ASCENDING), ("start", ASCENDING)],
                             name="scope_all_granularity_start"),
                  IndexModel([("expires_at", ASCENDING)], name="expires_at_ttl", expireAfterSeconds=0)],
    }


async def ensure_usage_indexes(db: Any, *, event_ttl_days: int) -> None:
    """Create the usage indexes; a changed event TTL is applied with ``collMod`` (the index exists)."""
    for collection, models in usage_indexes(event_ttl_days).items():
        try:
            await db[collection].create_indexes(models)
        except OperationFailure as exc:
            if exc.code not in _INDEX_OPTIONS_CONFLICT:
                raise
            await db.command("collMod", EVENTS, index={"name": "time_ttl",
                                                       "expireAfterSeconds": event_ttl_days * 86400})
            await db[collection].create_indexes(models)


@dataclass(frozen=True, slots=True)
class FoldId:
    writer: str
    seq: int

    def __str__(self) -> str:
        return f"{self.writer}:{self.seq}"

    @classmethod
    def parse(cls, text: str) -> FoldId:
        writer, _, seq = text.rpartition(":")
        return cls(writer, int(seq))


@dataclass
class _Fold:
    fold_id: FoldId
    ids: tuple[str, ...]
    events: list[UsageEvent]
    journaled: bool = False
    members: list[UsageEvent] | None = None  # set once the events have landed
    applied: bool = False


@dataclass
class BucketQuery:
    """Which bucket documents to read: one scope, one granularity, starts in ``[start_gte, start_lt)``."""

    scope: Scope
    scope_id: str
    granularity: Granularity
    start_gte: datetime
    start_lt: datetime
    user_id: str | None = None
    provider: str | None = None
    model: str | None = None

    def filter(self) -> dict[str, Any]:
        query: dict[str, Any] = {"scope": self.scope, "scope_id": self.scope_id, "granularity": self.granularity,
                                 "start": {"$gte": self.start_gte, "$lt": self.start_lt}}
        for name in ("user_id", "provider", "model"):
            if getattr(self, name) is not None:
                query[name] = getattr(self, name)
        return query


def event_from_document(doc: dict[str, Any]) -> UsageEvent:
    """A stored event document -> UsageEvent (``_id`` -> ``event_id``; store-only fields dropped)."""
    values = {name: doc[name] for name in _EVENT_FIELDS if name in doc}
    values["event_id"] = doc["_id"]
    return UsageEvent(**values)


class UsageRepository:
    """Writes events and buckets (``write_batch``, ``sweep``) and reads buckets for reports and quotas.

    ``write_batch`` is the UsageRecorder's BatchWriter: it must not be called concurrently (the
    recorder serialises it). Raises the store's errors (pymongo ``PyMongoError``); calling it again
    with the same batch resumes where it stopped.
    """

    def __init__(self, db: Any, *, retention: Retention | None = None, writer_id: str | None = None,
                 clock: Any = None) -> None:
        self._db = db
        self._events = db[EVENTS]
        self._buckets = db[BUCKETS]
        self._folds = db[FOLDS]
        self.retention = retention or Retention()
        self.writer_id = writer_id or uuid.uuid4().hex[:16]
        self._clock = clock or (lambda: datetime.now(UTC))
        self._seq = 0
        self._pending: _Fold | None = None
        self._use_bulk: bool | None = None  # None: not tried yet

    # --- write path -----------------------------------------------------------------------

    async def write_batch(self, events: Sequence[UsageEvent]) -> None:
        """Store ``events`` and fold them into every bucket, exactly once (see the module docstring)."""
        if not events:
            return
        ids = tuple(e.event_id for e in events)
        pending = self._pending
        if pending is not None and pending.ids != ids:
            # A different batch while one is unfinished: finish the old one first, so this writer's
            # folds reach every bucket in seq order.
            await self._complete(pending)
            self._pending = pending = None
        if pending is None:
            self._seq += 1
            pending = self._pending = _Fold(FoldId(self.writer_id, self._seq), ids, list(events))
        await self._complete(pending)
        self._pending = None

    async def _complete(self, fold_: _Fold) -> None:
        if not fold_.journaled:
            fold_id = fold_.fold_id
            await self._folds.update_one({"_id": str(fold_id)}, {"$setOnInsert": {
                "writer": fold_id.writer, "seq": fold_id.seq, "done": False, "started_at": self._clock()}},
                upsert=True)
            fold_.journaled = True
        if fold_.members is None:
            fold_.members = await self._insert(fold_.fold_id, fold_.events)
        if not fold_.applied:
            await self._apply(fold_.fold_id, fold_.members)
            fold_.applied = True
        await self._mark_done(str(fold_.fold_id), len(fold_.members))

    async def _mark_done(self, fold_id: str, events: int) -> None:
        now = self._clock()
        await self._folds.update_one({"_id": fold_id}, {"$set": {
            "done": True, "done_at": now, "events": events, "expires_at": now + timedelta(days=FOLD_KEEP_DAYS)}})

    async def _insert(self, fold_id: FoldId, events: Sequence[UsageEvent]) -> list[UsageEvent]:
        """Step 2. Returns the events stored under ``fold_id`` (all of them, unless some were
        already stored by another fold, which then counts them)."""
        docs = [{**e.to_document(), "fold_id": str(fold_id)} for e in events]
        try:
            await self._events.insert_many(docs, ordered=False)
            return list(events)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(err.get("code") != DUPLICATE_KEY for err in errors) or exc.details.get("writeConcernErrors"):
                raise
            duplicates = {docs[err["index"]]["_id"] for err in errors}
        owned = {doc["_id"] async for doc in self._events.find(
            {"_id": {"$in": sorted(duplicates)}, "fold_id": str(fold_id)}, {"_id": 1})}
        foreign = duplicates - owned
        if foreign:
            log.warning("%d usage events were already stored by another batch; counted there", len(foreign))
        return [e for e in events if e.event_id not in foreign]

    async def _apply(self, fold_id: FoldId, events: Sequence[UsageEvent]) -> None:
        """Step 3: one conditional upsert per bucket; retried or repeated, it never counts twice."""
        marker = f"folds.{fold_id.writer}"
        not_yet = [{marker: {"$exists": False}}, {marker: {"$lt": fold_id.seq}}]
        ops: list[tuple[dict[str, Any], dict[str, Any]]] = []
        for bucket_id, (key, counters) in fold(events).items():
            on_insert = key.dimensions()
            expires_at = self.retention.expires_at(key.granularity, key.start)
            if expires_at is not None:
                on_insert["expires_at"] = expires_at
            ops.append(({"_id": bucket_id, "$or": not_yet},
                        {"$inc": counters, "$set": {marker: fold_id.seq}, "$setOnInsert": on_insert}))
        if not ops:
            return  # pymongo refuses an empty bulk write
        if self._use_bulk is not False:
            try:
                await self._apply_bulk(ops)
                self._use_bulk = True
                return
            except TypeError:
                # mongomock-motor's bulk_write cannot build UpdateOne on pymongo >= 4.11; nothing was
                # sent, so fall back to one update_one per bucket, issued concurrently.
                if self._use_bulk:
                    raise
                self._use_bulk = False
        results = await asyncio.gather(*(self._apply_one(f, u) for f, u in ops), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def _apply_bulk(self, ops: list[tuple[dict[str, Any], dict[str, Any]]]) -> None:
        try:
            await self._buckets.bulk_write([UpdateOne(f, u, upsert=True) for f, u in ops], ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(err.get("code") != DUPLICATE_KEY for err in errors) or exc.details.get("writeConcernErrors"):
                raise
            for err in errors:
                filter_, update = ops[err["index"]]
                await self._buckets.update_one(filter_, update)

    async def _apply_one(self, filter_: dict[str, Any], update: dict[str, Any]) -> None:
        try:
            await self._buckets.update_one(filter_, update, upsert=True)
        except DuplicateKeyError:
            # Either this fold is already applied (the filter did not match the existing bucket), or
            # another writer created the bucket at the same instant: without upsert, the update
            # applies in the second case only.
            await self._buckets.update_one(filter_, update)

    async def sweep(self, *, grace_s: float = 3600.0, max_folds: int = 100) -> int:
        """Finish folds left unfinished by a crash: journaled more than ``grace_s`` seconds ago and not
        done. Re-applies each with its original fold id. Returns the number of events in the folds
        it finished. Safe to run on every replica at once."""
        cutoff = self._clock() - timedelta(seconds=grace_s)
        cursor = self._folds.find({"done": False, "started_at": {"$lt": cutoff}}, {"_id": 1}).limit(max_folds)
        fold_ids = [doc["_id"] async for doc in cursor]
        swept = 0
        for text in fold_ids:
            fold_id = FoldId.parse(text)
            if self._pending is not None and self._pending.fold_id == fold_id:
                continue  # our own batch, still being retried
            members = [event_from_document(d) async for d in self._events.find({"fold_id": text})]
            await self._apply(fold_id, members)
            await self._mark_done(text, len(members))
            swept += len(members)
            log.warning("usage sweep: finished fold %s (%d events)", text, len(members))
        return swept

    # --- reads --------------------------------------------------------------------------

    async def find_buckets(self, query: BucketQuery) -> list[dict[str, Any]]:
        """Bucket documents (dimensions + counters) matching ``query``."""
        projection = {"_id": 0, "start": 1, "provider": 1, "model": 1, **dict.fromkeys(COUNTERS, 1)}
        return await self._buckets.find(query.filter(), projection).to_list(length=None)

    async def window_totals(self, scope: Scope, scope_id: str, windows: Sequence[tuple[Granularity, datetime]]
                            ) -> dict[tuple[str, datetime], dict[str, int]]:
        """Counters summed over providers and models, per ``(granularity, start)`` window, for one
        scope (one round trip). Windows with no bucket are absent."""
        if not windows:
            return {}
        query = {"scope": scope, "scope_id": scope_id,
                 "$or": [{"granularity": g, "start": s} for g, s in windows]}
        projection = {"_id": 0, "granularity": 1, "start": 1, **dict.fromkeys(COUNTERS, 1)}
        out: dict[tuple[str, datetime], dict[str, int]] = {}
        async for doc in self._buckets.find(query, projection):
            start = doc["start"] if doc["start"].tzinfo else doc["start"].replace(tzinfo=UTC)
            total = out.setdefault((doc["granularity"], start), dict.fromkeys(COUNTERS, 0))
            for name in COUNTERS:
                total[name] += int(doc.get(name) or 0)
        return out

    async def totals_by_scope_id(self, scope: Scope, granularity: Granularity, start_gte: datetime,
                                 start_lt: datetime) -> list[dict[str, Any]]:
        """Counters summed per ``scope_id`` over a range of one granularity (for top-N lists)."""
        pipeline = [
            {"$match": {"scope": scope, "granularity": granularity, "start": {"$gte": start_gte, "$lt": start_lt}}},
            {"$group": {"_id": "$scope_id", **{name: {"$sum": f"${name}"} for name in COUNTERS}}},
        ]
        return await self._buckets.aggregate(pipeline).to_list(length=None)

    async def user_names(self, user_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """``{user_id: {"name", "email"}}`` for labelling reports (one round trip)."""
        if not user_ids:
            return {}
        cursor = self._db["users"].find({"_id": {"$in": list(user_ids)}}, {"name": 1, "email": 1})
        return {doc["_id"]: {"name": doc.get("name"), "email": doc.get("email")} async for doc in cursor}

    async def totals(self, *, user_id: str | None = None, access_key_id: str | None = None,
                     since: datetime | None = None, until: datetime | None = None) -> dict[str, int]:
        """Sum of requests and the four token counters over raw events (within their TTL)."""
        match: dict[str, Any] = {}
        if user_id:
            match["user_id"] = user_id
        if access_key_id:
            match["access_key_id"] = access_key_id
        if since or until:
            match["time"] = {k: v for k, v in (("$gte", since), ("$lt", until)) if v is not None}
        pipeline = [{"$match": match}, {"$group": {
            "_id": None, "requests": {"$sum": 1},
            "input_tokens": {"$sum": "$input_tokens"}, "output_tokens": {"$sum": "$output_tokens"},
            "cache_creation_input_tokens": {"$sum": "$cache_creation_input_tokens"},
            "cache_read_input_tokens": {"$sum": "$cache_read_input_tokens"}}}]
        rows = await self._events.aggregate(pipeline).to_list(length=1)
        totals = {"requests": 0, "input_tokens": 0, "output_tokens": 0,
                  "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
        if rows:
            totals.update({k: int(v) for k, v in rows[0].items() if k != "_id"})
        return totals
