"""The embedded store: mongomock-motor with dict indexes, so its cost per operation does not grow
with the data (issue 16: "The embedded store must not sink").

mongomock keeps each collection in one ``OrderedDict`` and answers every query by testing every
document: an ``update_one({"_id": ...})`` on a bucket, a ``find_one({"key_hash": ...})`` and the
duplicate check of each insert all cost O(collection). Worse, each access to a collection with a
TTL index first scans the whole collection for expired documents (``CollectionStore.
_remove_expired_documents``), so every inserted usage event paid a scan of all stored events.

This module keeps mongomock's query and update engine (the repositories run unchanged, on the same
engine as the tests) and only narrows which documents it looks at:

- ``IndexedCollectionStore`` keeps, next to the documents, one hash index per top-level field that a
  declared index names (``create_index``), and a heap of TTL deadlines (expiry is exact, as in
  mongomock, but finding what expired is O(log n) per expired document instead of a scan per access).
  A ``cap`` bounds a collection: past it, the oldest documents are evicted (as a capped collection does).
- ``IndexedCollection._iter_documents`` asks the store for candidates: the documents whose ``_id``
  or an indexed field equals the filter's value (``$eq``, ``$in`` and a top-level ``$or`` of such
  branches included); mongomock's own ``filter_applies`` then tests only those. A filter without an
  indexed equality scans, as before.
- ``aggregate`` starting with ``$match`` reads its input through ``find`` (the same filter, indexed).

Nothing here changes what runs against MongoDB/DocumentDB: it is chosen by ``open_store(None, ...)``
only. It depends on mongomock's internals (``CollectionStore``, ``Collection._iter_documents``,
``_ensure_uniques``, ``Database._collection_accesses``) as pinned in requirements.lock; the tests in
tests/store/test_embedded.py compare its answers with plain mongomock's.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any

import mongomock
from mongomock import helpers
from mongomock.collection import Collection
from mongomock.filtering import filter_applies
from mongomock.mongo_client import MongoClient
from mongomock.store import CollectionStore, DatabaseStore, ServerStore
from mongomock_motor import AsyncMongoMockClient, AsyncMongoMockDatabase

_UNINDEXABLE = object()  # an index key for values that cannot be hashed (arrays, sub-documents)
_SCAN_FRACTION = 4  # a candidate set larger than 1/4 of the collection is not worth sorting: scan


def _key(value: Any) -> Any:
    """The hash-index key of a stored or queried value: datetimes as mongomock stores them (naive UTC,
    milliseconds), arrays and sub-documents as ``_UNINDEXABLE`` (an array matches any of its elements,
    so such documents are candidates for every value)."""
    if isinstance(value, datetime):
        return helpers.patch_datetime_awareness_in_document(value)
    if isinstance(value, (list, tuple, dict)):
        return _UNINDEXABLE
    try:
        hash(value)
    except TypeError:
        return _UNINDEXABLE
    return value


def _store_id(doc_id: Any) -> Any:
    """The key mongomock files a document under (``Collection._insert``: dict ids are hashdicts)."""
    return helpers.hashdict(doc_id) if isinstance(doc_id, dict) else doc_id


def _ttl_deadline(value: Any, expire_s: int) -> datetime | None:
    """When a document with TTL field ``value`` expires (mongomock's rule: the earliest datetime of
    an array; no datetime, no expiry)."""
    if isinstance(value, list):
        dates = [v for v in value if isinstance(v, datetime)]
        value = min(dates) if dates else None
    if not isinstance(value, datetime):
        return None
    try:
        return helpers.patch_datetime_awareness_in_document(value) + timedelta(seconds=expire_s)
    except OverflowError:
        return None


class _HashIndex:
    """``key -> ids`` for one field; a key with one document holds the id itself (most values of
    a field like ``time`` are unique, and a set per value would cost ~200 bytes each)."""

    __slots__ = ("entries",)

    def __init__(self) -> None:
        self.entries: dict[Any, Any] = {}

    def add(self, key: Any, doc_id: Any) -> None:
        found = self.entries.get(key, _UNINDEXABLE)
        if found is _UNINDEXABLE:
            self.entries[key] = doc_id
        elif isinstance(found, _IdSet):
            found.add(doc_id)
        elif found != doc_id:
            self.entries[key] = _IdSet((found, doc_id))

    def remove(self, key: Any, doc_id: Any) -> None:
        found = self.entries.get(key, _UNINDEXABLE)
        if isinstance(found, _IdSet):
            found.discard(doc_id)
            if len(found) == 1:
                self.entries[key] = next(iter(found))
        elif found is not _UNINDEXABLE and found == doc_id:
            del self.entries[key]

    def size(self, key: Any) -> int:
        found = self.entries.get(key, _UNINDEXABLE)
        return 0 if found is _UNINDEXABLE else len(found) if isinstance(found, _IdSet) else 1

    def ids(self, key: Any) -> Iterable[Any]:
        found = self.entries.get(key, _UNINDEXABLE)
        if found is _UNINDEXABLE:
            return ()
        return found if isinstance(found, _IdSet) else (found,)


class _IdSet(set):
    """A set of ids (its own type, so an id that happens to be a set-like value is never confused)."""


class IndexedCollectionStore(CollectionStore):
    """mongomock's ``CollectionStore`` with hash indexes on the fields named by declared indexes,
    a heap of TTL deadlines, and an optional ``cap`` (max documents; the oldest are evicted)."""

    def __init__(self, name: str, cap: int | None = None) -> None:
        super().__init__(name)
        self.cap = cap
        self.evicted = 0  # documents dropped because of ``cap``
        self.examined = 0  # documents handed to the filter (a test's handle on "indexed or scanned")
        self._reset_indexes()

    def _reset_indexes(self) -> None:
        self._fields: dict[str, _HashIndex] = {}
        self._unindexable: dict[str, set[Any]] = {}
        self._doc_keys: dict[Any, tuple[Any, ...]] = {}  # store id -> its key per field (as indexed)
        self._order: dict[Any, int] = {}  # store id -> insertion number (mongomock's natural order)
        self._counter = itertools.count()
        self._ttl: dict[str, tuple[str, int]] = {}  # index name -> (field, expireAfterSeconds)
        self._deadlines: dict[str, dict[Any, datetime]] = {}  # index name -> store id -> deadline
        self._heap: list[tuple[datetime, int, str, Any]] = []

    # --- index maintenance ----------------------------------------------------------------

    def create_index(self, index_name: str, index_dict: dict[str, Any]) -> None:
        super().create_index(index_name, index_dict)
        ttl = self._ttl_rule(index_dict)
        # A TTL index's field is only read by expiry (the heap below), never looked up by value.
        fields = [] if ttl is not None else [
            field for field, _ in index_dict.get("key", ()) if "." not in field and field != "_id"]
        new_fields = [f for f in fields if f not in self._fields]
        if not new_fields and (ttl is None or self._ttl.get(index_name) == ttl):
            return
        for field in new_fields:
            self._fields[field] = _HashIndex()
            self._unindexable[field] = set()
        if ttl is not None:
            self._ttl[index_name] = ttl
            self._deadlines[index_name] = {}
        self._rebuild()

    def drop_index(self, index_name: str) -> None:
        super().drop_index(index_name)
        if self._ttl.pop(index_name, None) is not None:
            self._deadlines.pop(index_name, None)
        # The hash indexes stay: they only narrow candidates, and another index may name the field.

    def drop(self) -> None:
        super().drop()
        self._reset_indexes()

    @staticmethod
    def _ttl_rule(index_dict: dict[str, Any]) -> tuple[str, int] | None:
        """``(field, seconds)`` for a TTL index mongomock enforces (single key, integer seconds)."""
        if index_dict.get("expireAfterSeconds") is None or len(index_dict.get("key", ())) != 1:
            return None
        try:
            return next(iter(index_dict["key"]))[0], int(index_dict["expireAfterSeconds"])
        except (TypeError, ValueError):
            return None

    def _rebuild(self) -> None:
        for index in self._fields.values():
            index.entries.clear()
        for ids in self._unindexable.values():
            ids.clear()
        self._doc_keys.clear()
        for deadlines in self._deadlines.values():
            deadlines.clear()
        self._heap.clear()
        for store_id, doc in self._documents.items():
            self._index(store_id, doc)

    def _index(self, store_id: Any, doc: dict[str, Any]) -> None:
        """(Re)index one document after an insert, a replacement or an in-place update."""
        keys = tuple(_key(doc.get(field)) for field in self._fields)
        old = self._doc_keys.get(store_id)
        if old != keys:
            if old is not None:
                self._unindex_keys(store_id, old)
            for field, key in zip(self._fields, keys, strict=True):
                if key is _UNINDEXABLE:
                    self._unindexable[field].add(store_id)
                else:
                    self._fields[field].add(key, store_id)
            self._doc_keys[store_id] = keys
        for name, (field, expire_s) in self._ttl.items():
            deadline = _ttl_deadline(doc.get(field), expire_s)
            deadlines = self._deadlines[name]
            if deadlines.get(store_id) == deadline:
                continue
            if deadline is None:
                deadlines.pop(store_id, None)
            else:
                deadlines[store_id] = deadline
                heapq.heappush(self._heap, (deadline, next(self._counter), name, store_id))
        if len(self._heap) > 2 * sum(map(len, self._deadlines.values())) + 1024:
            self._compact_heap()

    def _compact_heap(self) -> None:
        """Drop the heap's stale entries (documents deleted, evicted or given a new deadline before
        theirs came), so a capped collection's heap does not grow with every document ever written."""
        self._heap = [(deadline, next(self._counter), name, store_id)
                      for name, deadlines in self._deadlines.items() for store_id, deadline in deadlines.items()]
        heapq.heapify(self._heap)

    def _unindex_keys(self, store_id: Any, keys: tuple[Any, ...]) -> None:
        for field, key in zip(self._fields, keys, strict=True):
            if key is _UNINDEXABLE:
                self._unindexable[field].discard(store_id)
            else:
                self._fields[field].remove(key, store_id)

    def reindex(self, doc: dict[str, Any]) -> None:
        store_id = _store_id(doc.get("_id"))
        if store_id in self._documents:
            self._index(store_id, self._documents[store_id])

    # --- CollectionStore's mapping, kept in step with the indexes --------------------------

    def __setitem__(self, key: Any, val: dict[str, Any]) -> None:
        new = key not in self._documents
        super().__setitem__(key, val)
        if new:
            self._order[key] = next(self._counter)
        self._index(key, val)
        if new and self.cap is not None:
            while len(self._documents) > self.cap:
                del self[next(iter(self._documents))]
                self.evicted += 1

    def __delitem__(self, key: Any) -> None:
        super().__delitem__(key)
        keys = self._doc_keys.pop(key, None)
        if keys is not None:
            self._unindex_keys(key, keys)
        self._order.pop(key, None)
        for deadlines in self._deadlines.values():
            deadlines.pop(key, None)

    def _remove_expired_documents(self) -> None:
        """Delete what expired: pop deadlines ``<= mongomock.utcnow()`` off the heap (a deadline
        changed since it was pushed is skipped), instead of mongomock's scan per access."""
        heap = self._heap
        if not heap:
            return
        now = mongomock.utcnow()  # type: ignore[attr-defined]  # re-exported from helpers (mongomock patches it) but missing from its __all__
        while heap and heap[0][0] <= now:
            deadline, _, name, store_id = heapq.heappop(heap)
            deadlines = self._deadlines.get(name)
            if deadlines is not None and deadlines.get(store_id) == deadline and store_id in self._documents:
                del self[store_id]

    # --- queries ----------------------------------------------------------------------------

    def candidates(self, filter_: dict[str, Any]) -> list[dict[str, Any]] | None:
        """The documents that may match ``filter_`` in mongomock's natural order, or None when no
        index narrows it (the caller scans). Candidates are a superset: the caller still applies
        the filter to each."""
        self._remove_expired_documents()
        plan = self._plan(filter_)
        if plan is None or plan[0] * _SCAN_FRACTION > len(self._documents) > 64:
            return None
        docs = self._documents
        found = [i for i in plan[1]() if i in docs]
        if len(found) > 1:
            found.sort(key=self._order.__getitem__)
        self.examined += len(found)
        return [docs[i] for i in found]

    def _plan(self, filter_: Any) -> tuple[int, Callable[[], set[Any]]] | None:
        """``(size, ids())`` for the narrowest indexed condition of ``filter_`` (sizes are counted
        without building sets, so a broad condition like ``scope: "user"`` costs nothing), or None."""
        if not isinstance(filter_, dict):
            return None
        best: tuple[int, Callable[[], set[Any]]] | None = None
        for field, condition in filter_.items():
            if field == "$or" and isinstance(condition, list) and condition:
                plan = self._plan_union(condition)
            elif field == "$and" and isinstance(condition, list):
                plans = [p for p in map(self._plan, condition) if p is not None]
                plan = min(plans, key=lambda p: p[0]) if plans else None
            elif field == "_id" or field in self._fields:
                plan = self._plan_field(field, condition)
            else:
                continue
            if plan is not None and (best is None or plan[0] < best[0]):
                best = plan
                if best[0] == 0:
                    break
        return best

    def _plan_union(self, branches: list[Any]) -> tuple[int, Callable[[], set[Any]]] | None:
        plans = []
        for branch in branches:
            plan = self._plan(branch)
            if plan is None:
                return None
            plans.append(plan)

        def ids() -> set[Any]:
            out: set[Any] = set()
            for _, branch_ids in plans:
                out |= branch_ids()
            return out
        return sum(p[0] for p in plans), ids

    def _plan_field(self, field: str, condition: Any) -> tuple[int, Callable[[], set[Any]]] | None:
        """Ids whose ``field`` may equal ``condition`` (a value, ``{"$eq": v}`` or ``{"$in": [...]}``);
        None for any other operator or a value an index cannot look up."""
        if isinstance(condition, dict):
            if condition.keys() == {"$eq"}:
                values = [condition["$eq"]]
            elif condition.keys() == {"$in"} and isinstance(condition["$in"], (list, tuple)):
                values = list(condition["$in"])
            elif any(str(k).startswith("$") for k in condition):
                return None
            else:
                values = [condition]  # a whole sub-document: equality
        else:
            values = [condition]
        if field == "_id":
            if not all(_hashable_id(v) for v in values):
                return None
            id_set = {_store_id(v) for v in values}
            return len(id_set), lambda: id_set
        keys = [_key(v) for v in values]
        if any(k is _UNINDEXABLE for k in keys):
            return None
        index, unindexable = self._fields[field], self._unindexable[field]

        def ids() -> set[Any]:
            out = set(unindexable)
            for key in keys:
                out.update(index.ids(key))
            return out
        return len(unindexable) + sum(index.size(key) for key in keys), ids


def _hashable_id(value: Any) -> bool:
    if isinstance(value, (list, tuple)):
        return False  # an _id is never an array; such a filter is not a plain lookup
    try:
        hash(_store_id(value))
    except TypeError:
        return False
    return True


class IndexedCollection(Collection):
    """mongomock's ``Collection`` that reads candidates from an ``IndexedCollectionStore``."""

    def _iter_documents(self, filter: dict[str, Any]) -> Iterator[dict[str, Any]]:
        store = self._store
        docs = store.candidates(filter) if isinstance(store, IndexedCollectionStore) else None
        if docs is None:
            return super()._iter_documents(filter)
        if not docs:
            filter_applies(filter, {})  # mongomock validates a filter even when nothing can match
        return (doc for doc in docs if filter_applies(filter, doc))

    def _ensure_uniques(self, new_data: dict[str, Any]) -> None:
        # Called by mongomock after every insert and every in-place update that changed a document
        # (before its unique check), so the indexes follow the update.
        store = self._store
        if isinstance(store, IndexedCollectionStore):
            store.reindex(new_data)
        super()._ensure_uniques(new_data)

    def aggregate(self, pipeline: list[dict[str, Any]], session: Any = None, **kwargs: Any) -> Any:
        if pipeline and isinstance(pipeline[0], dict) and set(pipeline[0]) == {"$match"}:
            from mongomock import aggregate as mongomock_aggregate

            # The $match stage stays in the pipeline (it filters the same way again); find() only
            # lets the indexes pick its input instead of every document.
            in_collection = list(self.find(pipeline[0]["$match"]))
            return mongomock_aggregate.process_pipeline(in_collection, self.database, pipeline, session)
        return super().aggregate(pipeline, session=session, **kwargs)


class IndexedDatabaseStore(DatabaseStore):
    def __init__(self, caps: dict[str, int]) -> None:
        super().__init__()
        self._caps = caps

    def __getitem__(self, col_name: str) -> CollectionStore:
        try:
            return self._collections[col_name]
        except KeyError:
            col = self._collections[col_name] = IndexedCollectionStore(col_name, self._caps.get(col_name))
            return col


class IndexedServerStore(ServerStore):
    def __init__(self, caps: dict[str, int]) -> None:
        super().__init__()
        self._caps = caps

    def __getitem__(self, db_name: str) -> DatabaseStore:
        try:
            return self._databases[db_name]
        except KeyError:
            db = self._databases[db_name] = IndexedDatabaseStore(self._caps)
            return db


class EmbeddedDatabase(AsyncMongoMockDatabase):
    def get_collection(self, name: str, *args: Any, **kwargs: Any) -> Any:
        database = self.delegate
        if name not in database._collection_accesses:
            database._ensure_valid_collection_name(name)
            database._collection_accesses[name] = IndexedCollection(
                database, name=name, read_preference=database.read_preference,
                codec_options=database.codec_options, _db_store=database._store)
        return super().get_collection(name, *args, **kwargs)


class EmbeddedClient(AsyncMongoMockClient):
    """The embedded store's client: ``AsyncMongoMockClient`` over indexed collections.
    ``caps``: ``{collection name: max documents}`` (the oldest are evicted past it)."""

    def __init__(self, *, caps: dict[str, int] | None = None, **kwargs: Any) -> None:
        super().__init__(mock_mongo_client=MongoClient(_store=IndexedServerStore(dict(caps or {})), **kwargs))

    def get_database(self, *args: Any, **kwargs: Any) -> EmbeddedDatabase:
        plain = super().get_database(*args, **kwargs)
        return EmbeddedDatabase(self, plain.delegate)
