"""Writing usage: events and their buckets, exactly once (``UsageWriter``). Collections: app/store/usage.py.

Write protocol (``UsageWriter.write_batch``), idempotent per event without transactions, so it
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

Data errors (issue 10) never leave the writer stuck on a batch: before step 1 every event document
is encoded with pymongo's BSON encoder (``preflight``); events that fail are left out of the fold.
Documents the server refuses at step 2 (per-document write errors with a data code) are left out
too; after a batch-wide data error at step 2 the fold keeps the events that landed (read back by
id). The fold then completes normally and ``write_batch`` raises ``UnwrittenEvents`` naming the
events it did not store, which the recorder splits or dead-letters (``dead_letter`` ->
``usage_dead_letter``). A bucket update the server refuses at step 3 is dead-lettered with the
fold's counters for that bucket. Transient errors (``app.store.errors.is_transient``) are raised
unchanged and the same batch resumes where it stopped.
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

import bson
from pymongo import UpdateOne
from pymongo.errors import BulkWriteError, DuplicateKeyError

from app.records.buckets import Retention, event_counters, fold
from app.records.events import UsageEvent
from app.store.errors import UnwrittenEvents, describe, is_data_error_code, is_transient
from app.store.usage import BUCKETS, DEAD_LETTER, EVENTS, FOLDS

log = logging.getLogger(__name__)

FOLD_KEEP_DAYS = 7  # finished fold records are kept this long (for inspection), then expire
DEAD_LETTER_KEEP_DAYS = 30  # dead letters expire this long after they were written
DEAD_LETTER_REPR_CHARS = 4000  # the event's repr (ASCII) is cut here
DEAD_LETTER_VALUE_CHARS = 1024  # each stored field value (strings, or the repr of an unstorable one)
DUPLICATE_KEY = 11000
_EVENT_FIELDS = tuple(f.name for f in dataclasses.fields(UsageEvent))


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
    ids: tuple[object, ...]  # the ids of the whole batch the caller passed (to recognise its retry)
    events: list[UsageEvent]  # the events this fold tries to store (the batch minus pre-flight rejects)
    docs: list[dict[str, Any]]  # their documents (without fold_id)
    rejected: list[tuple[UsageEvent, str]] = dataclasses.field(default_factory=list)
    isolated: bool = True  # every rejected event was found bad on its own
    journaled: bool = False
    members: list[UsageEvent] | None = None  # set once the events have landed
    applied: bool = False
    acknowledged: set[str] = dataclasses.field(default_factory=set)  # bucket ids whose update was acknowledged




def event_from_document(doc: dict[str, Any]) -> UsageEvent:
    """A stored event document -> UsageEvent (``_id`` -> ``event_id``; store-only fields dropped)."""
    values = {name: doc[name] for name in _EVENT_FIELDS if name in doc}
    values["event_id"] = doc["_id"]
    return UsageEvent(**values)


def preflight(events: Sequence[UsageEvent]) -> tuple[list[tuple[UsageEvent, dict[str, Any]]],
                                                     list[tuple[UsageEvent, str]]]:
    """Split ``events`` into ``(event, document)`` for those the store can take and
    ``(event, reason)`` for the others, before anything is written: each event document is encoded
    with pymongo's BSON encoder (the one the driver uses; mongomock does not check everything it
    does), its counters too, and the fields its bucket keys are built from are checked. Catches what
    sanitising missed: strings UTF-8 cannot encode, integers past 64 bits, types BSON does not know.
    The documents are reused for the insert (about 16 µs per event here, encoding included)."""
    good: list[tuple[UsageEvent, dict[str, Any]]] = []
    bad: list[tuple[UsageEvent, str]] = []
    for event in events:
        try:
            doc = event.to_document()
            bson.encode(doc)
            bson.encode(event_counters(event))
            if not isinstance(event.time, datetime):
                raise TypeError(f"time: expected a datetime, got {type(event.time).__name__}")
            if not isinstance(event.model, (str, type(None))):
                raise TypeError(f"model: expected a string, got {type(event.model).__name__}")
        except Exception as exc:  # noqa: BLE001 - any failure here is about this event's data
            bad.append((event, describe(exc)))
        else:
            good.append((event, doc))
    return good, bad


def _storable(value: Any) -> Any:
    if isinstance(value, str) and len(value) > DEAD_LETTER_VALUE_CHARS:
        value = value[:DEAD_LETTER_VALUE_CHARS]
    try:
        bson.encode({"v": value})
        return value
    except Exception:  # noqa: BLE001 - keep what can be kept; the repr of the rest
        return ascii(value)[:DEAD_LETTER_VALUE_CHARS]


def dead_letter_document(event: UsageEvent, reason: str, *, now: datetime, writer: str) -> dict[str, Any]:
    """The ``usage_dead_letter`` document for ``event`` (always BSON-encodable; see ``dead_letter``)."""
    try:
        fields = event.to_document()
    except Exception:  # noqa: BLE001 - e.g. a field asdict cannot copy
        fields = {name: getattr(event, name, None) for name in _EVENT_FIELDS}
        fields["_id"] = fields.pop("event_id", None)
    raw_id = fields.get("_id")
    event_id = (ascii(raw_id)[1:-1] if isinstance(raw_id, str) else ascii(raw_id))[:80]
    try:
        text = ascii(event)[:DEAD_LETTER_REPR_CHARS]
    except Exception:  # noqa: BLE001
        text = "<unprintable>"
    return {"_id": f"event|{event_id}", "kind": "event", "event_id": event_id, "reason": str(reason).encode("ascii", "backslashreplace").decode()[:1000],
            "event": text, "document": {name: _storable(value) for name, value in fields.items()},
            "user_id": _storable(fields.get("user_id")), "access_key_id": _storable(fields.get("access_key_id")),
            "writer": writer, "dead_lettered_at": now, "expires_at": now + timedelta(days=DEAD_LETTER_KEEP_DAYS)}




class UsageWriter:
    """Writes events and folds them into buckets (``write_batch``, ``sweep``, ``dead_letter``).

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
        self.retention = retention or Retention()  # bucket TTLs; reports read it to know what is kept
        self.writer_id = writer_id or uuid.uuid4().hex[:16]
        self._clock = clock or (lambda: datetime.now(UTC))
        self._seq = 0
        self._pending: _Fold | None = None
        self._use_bulk: bool | None = None  # None: not tried yet
        self.dead_lettered_buckets = 0  # bucket updates the server refused (see _apply)
    async def write_batch(self, events: Sequence[UsageEvent]) -> None:
        """Store ``events`` and fold them into every bucket, exactly once (see the module docstring).

        Raises the store's transient errors (call again with the same batch: it resumes), or
        ``UnwrittenEvents`` after storing and folding every event it could: the events the store
        can never take as they are (documents BSON cannot encode, or that the server refused as
        invalid; ``isolated``), or, after a batch-wide data error, the events not stored
        (``isolated=False``: split and write again). A non-transient failure never leaves this
        writer stuck on the batch."""
        if not events:
            return
        ids = tuple(e.event_id for e in events)
        pending = self._pending
        if pending is not None and pending.ids != ids:
            # A different batch while one is unfinished: finish the old one first, so this writer's
            # folds reach every bucket in seq order.
            await self._run(pending)
            if pending.rejected:  # only if a caller gave up on a batch mid-retry (not the recorder)
                log.error("usage batch %s given up by its caller: %d unwritable events not reported",
                          pending.fold_id, len(pending.rejected))
            self._pending = pending = None
        if pending is None:
            good, bad = preflight(events)
            if not good:
                raise UnwrittenEvents(bad, isolated=True)
            self._seq += 1
            pending = self._pending = _Fold(FoldId(self.writer_id, self._seq), ids, [e for e, _ in good],
                                            [doc for _, doc in good], rejected=bad)
        await self._run(pending)
        self._pending = None
        if pending.rejected:
            raise UnwrittenEvents(pending.rejected, isolated=pending.isolated)

    async def _run(self, fold_: _Fold) -> None:
        """``_complete``; a non-transient error that escapes it abandons the fold (logged), so the
        writer never retries a batch that cannot succeed. Its events, if any landed, stay stored;
        the buckets it had not reached miss them (an under-count, never a double count)."""
        try:
            await self._complete(fold_)
        except Exception as exc:
            if is_transient(exc):
                raise
            self._pending = None
            log.error("usage fold %s abandoned after a non-transient error (%s)", fold_.fold_id, describe(exc))
            raise

    async def _complete(self, fold_: _Fold) -> None:
        if not fold_.journaled:
            fold_id = fold_.fold_id
            await self._folds.update_one({"_id": str(fold_id)}, {"$setOnInsert": {
                "writer": fold_id.writer, "seq": fold_id.seq, "done": False, "started_at": self._clock()}},
                upsert=True)
            fold_.journaled = True
        if fold_.members is None:
            fold_.members = await self._insert(fold_)
        if not fold_.applied:
            await self._apply(fold_.fold_id, fold_.members, fold_.acknowledged)
            fold_.applied = True
        await self._mark_done(str(fold_.fold_id), len(fold_.members))

    async def _mark_done(self, fold_id: str, events: int) -> None:
        now = self._clock()
        await self._folds.update_one({"_id": fold_id}, {"$set": {
            "done": True, "done_at": now, "events": events, "expires_at": now + timedelta(days=FOLD_KEEP_DAYS)}})

    async def _insert(self, fold_: _Fold) -> list[UsageEvent]:
        """Step 2. Returns the events stored under the fold (all of them, unless some were already
        stored by another fold, which then counts them, or the store refused some as invalid, which
        are added to ``fold_.rejected``)."""
        fold_id, events = str(fold_.fold_id), fold_.events
        docs = [{**doc, "fold_id": fold_id} for doc in fold_.docs]
        refused: dict[int, str] = {}
        try:
            await self._events.insert_many(docs, ordered=False)
            return list(events)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if exc.details.get("writeConcernErrors") or any(
                    err.get("code") != DUPLICATE_KEY and not is_data_error_code(err.get("code")) for err in errors):
                raise
            refused = {err["index"]: f"{err.get('code')}: {err.get('errmsg', '')}"[:500]
                       for err in errors if err.get("code") != DUPLICATE_KEY}
            duplicates = {docs[err["index"]]["_id"] for err in errors if err.get("code") == DUPLICATE_KEY}
        except Exception as exc:
            if is_transient(exc):
                raise
            # A batch-wide data error: some documents may have landed. Keep those in the fold; the
            # rest go back to the caller, who splits them until the bad one is alone.
            return await self._keep_stored(fold_, describe(exc))
        owned = {doc["_id"] async for doc in self._events.find(
            {"_id": {"$in": sorted(duplicates)}, "fold_id": fold_id}, {"_id": 1})} if duplicates else set()
        fold_.rejected += [(events[i], f"refused by the store: {reason}") for i, reason in sorted(refused.items())]
        if refused:
            log.error("the store refused %d usage events as invalid (fold %s)", len(refused), fold_id)
        foreign = duplicates - owned
        if foreign:
            log.warning("%d usage events were already stored by another batch; counted there", len(foreign))
        return [e for i, e in enumerate(events) if i not in refused and e.event_id not in foreign]

    async def _keep_stored(self, fold_: _Fold, reason: str) -> list[UsageEvent]:
        fold_id = str(fold_.fold_id)
        ids = [e.event_id for e in fold_.events]
        stored = {doc["_id"]: doc.get("fold_id") async for doc in self._events.find(
            {"_id": {"$in": ids}}, {"_id": 1, "fold_id": 1})}
        members = [e for e in fold_.events if stored.get(e.event_id) == fold_id]
        missing = [e for e in fold_.events if e.event_id not in stored]
        fold_.rejected += [(e, reason) for e in missing]
        fold_.isolated = fold_.isolated and len(missing) <= 1
        log.warning("usage batch %s: %d of %d events stored before a data error (%s); splitting the rest",
                    fold_id, len(members), len(fold_.events), reason)
        return members

    async def _apply(self, fold_id: FoldId, events: Sequence[UsageEvent], acknowledged: set[str] | None = None
                     ) -> None:
        """Step 3: one conditional upsert per bucket; retried or repeated, it never counts twice.
        ``acknowledged`` (kept across retries of one fold): buckets whose update the store already
        acknowledged are not sent again (only a speed-up: sending them again would change nothing).

        A bucket the server refuses as invalid (a data error: it cannot succeed on retry) is left
        without this fold's counts and recorded in the dead-letter collection; transient errors
        are raised (the caller retries the fold)."""
        marker = f"folds.{fold_id.writer}"
        not_yet = [{marker: {"$exists": False}}, {marker: {"$lt": fold_id.seq}}]
        ops: list[tuple[dict[str, Any], dict[str, Any]]] = []
        for bucket_id, (key, counters) in fold(events).items():
            if acknowledged is not None and bucket_id in acknowledged:
                continue
            on_insert = key.dimensions()
            expires_at = self.retention.expires_at(key.granularity, key.start)
            if expires_at is not None:
                on_insert["expires_at"] = expires_at
            ops.append(({"_id": bucket_id, "$or": not_yet},
                        {"$inc": counters, "$set": {marker: fold_id.seq}, "$setOnInsert": on_insert}))
        if not ops:
            return  # pymongo refuses an empty bulk write
        refused: dict[int, str] = {}
        if self._use_bulk is not False:
            try:
                refused = await self._apply_bulk(ops)
                self._use_bulk = True
            except TypeError:
                # mongomock-motor's bulk_write cannot build UpdateOne on pymongo >= 4.11; nothing was
                # sent, so fall back to one update_one per bucket, issued concurrently.
                if self._use_bulk:
                    raise
                self._use_bulk = False
        if self._use_bulk is False:
            results = await asyncio.gather(*(self._apply_one(f, u) for f, u in ops), return_exceptions=True)
            if acknowledged is not None:
                acknowledged.update(op[0]["_id"] for op, r in zip(ops, results, strict=True)
                                    if not isinstance(r, BaseException))
            for result in results:
                if isinstance(result, BaseException) and is_transient(result):
                    raise result
            refused = {i: describe(r) for i, r in enumerate(results) if isinstance(r, BaseException)}
        for index, reason in refused.items():
            await self._dead_letter_bucket(fold_id, ops[index], reason)

    async def _apply_bulk(self, ops: list[tuple[dict[str, Any], dict[str, Any]]]) -> dict[int, str]:
        """Returns ``{op index: reason}`` for the updates the server refused as invalid."""
        try:
            await self._buckets.bulk_write([UpdateOne(f, u, upsert=True) for f, u in ops], ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if exc.details.get("writeConcernErrors") or any(
                    err.get("code") != DUPLICATE_KEY and not is_data_error_code(err.get("code")) for err in errors):
                raise
            refused = {err["index"]: f"{err.get('code')}: {err.get('errmsg', '')}"[:500]
                       for err in errors if err.get("code") != DUPLICATE_KEY}
            for err in errors:
                if err.get("code") == DUPLICATE_KEY:
                    filter_, update = ops[err["index"]]
                    await self._buckets.update_one(filter_, update)
            return refused
        return {}

    async def _apply_one(self, filter_: dict[str, Any], update: dict[str, Any]) -> None:
        try:
            await self._buckets.update_one(filter_, update, upsert=True)
        except DuplicateKeyError:
            # Either this fold is already applied (the filter did not match the existing bucket), or
            # another writer created the bucket at the same instant: without upsert, the update
            # applies in the second case only.
            await self._buckets.update_one(filter_, update)

    async def _dead_letter_bucket(self, fold_id: FoldId, op: tuple[dict[str, Any], dict[str, Any]],
                                  reason: str) -> None:
        bucket_id = str(op[0]["_id"])
        now = self._clock()
        log.error("usage bucket %s refused fold %s (%s); its counts are in %s", bucket_id, fold_id, reason,
                  DEAD_LETTER)
        await self._db[DEAD_LETTER].update_one({"_id": f"bucket|{fold_id}|{bucket_id}"}, {"$setOnInsert": {
            "kind": "bucket", "bucket_id": bucket_id, "fold_id": str(fold_id), "counters": op[1]["$inc"],
            "reason": reason, "writer": self.writer_id, "dead_lettered_at": now,
            "expires_at": now + timedelta(days=DEAD_LETTER_KEEP_DAYS)}}, upsert=True)
        self.dead_lettered_buckets += 1

    async def dead_letter(self, event: UsageEvent, reason: str) -> None:
        """Keep an event the store cannot take in ``usage_dead_letter``, as far as it can be stored:
        ``event`` (its repr, ASCII, cut at DEAD_LETTER_REPR_CHARS), ``document`` (each field that BSON
        can encode, the repr of the others), ``reason``, ``dead_lettered_at``; it expires after
        DEAD_LETTER_KEEP_DAYS. Idempotent (a retry after a lost acknowledgement adds nothing).
        Raises the store's errors."""
        now = self._clock()
        doc = dead_letter_document(event, reason, now=now, writer=self.writer_id)
        await self._db[DEAD_LETTER].update_one({"_id": doc.pop("_id")}, {"$setOnInsert": doc}, upsert=True)

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

