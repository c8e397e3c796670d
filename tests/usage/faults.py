"""A fault injector for the store: wraps a database so that writes to chosen collections fail.

Not a mock of the code under test: the real repository runs against the real (mongomock-motor or
MongoDB) collections; this only makes some calls raise ``AutoReconnect`` the way a network failure
or a failover does, either *before* the write (outage) or *after* it was applied (a lost
acknowledgement, the ambiguous case that makes naive retries double count).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from pymongo.errors import AutoReconnect, BulkWriteError, ExecutionTimeout, NetworkTimeout

READS = frozenset({"find", "find_one", "count_documents", "aggregate"})

WRITES = frozenset({"insert_many", "insert_one", "update_one", "update_many", "bulk_write",
                    "find_one_and_update", "delete_many"})
USAGE_COLLECTIONS = ("usage_events", "usage_buckets", "usage_folds")


class Faults:
    """Switches: ``down`` (every write fails before reaching the store; reads too when ``reads``);
    ``fail_after`` (N more writes succeed, then ``down``); ``lose_ack_at`` (the write with this
    index, counting every write that reached the store from 0, is applied and then raises);
    ``lose_ack_rate`` (each write that reached the store loses its acknowledgement with this
    probability, from a seeded generator). ``writes`` counts writes that reached the store;
    ``injected`` counts raised errors, ``lost_acks`` the acknowledgements lost. ``heal()`` ends an
    outage. Errors raised cycle through AutoReconnect, NetworkTimeout and ExecutionTimeout when
    ``varied`` (all three are what a failover or a network cut look like to the driver)."""

    def __init__(self, collections: tuple[str, ...] = USAGE_COLLECTIONS, *, reads: bool = False,
                 varied: bool = False, seed: int = 10) -> None:
        self.collections = collections
        self.reads = reads
        self.varied = varied
        self.down = False
        self.fail_after: int | None = None
        self.lose_ack_at: int | None = None
        self.lose_ack_rate = 0.0
        self.writes = 0
        self.injected = 0
        self.lost_acks = 0
        self._random = random.Random(seed)

    def _error(self, message: str) -> Exception:
        kind = self.injected % 3 if self.varied else 0
        if kind == 1:
            return NetworkTimeout(f"injected: {message} (timed out)")
        if kind == 2:
            return ExecutionTimeout(f"injected: {message} (operation exceeded time limit)", code=50)
        return AutoReconnect(f"injected: {message}")

    def heal(self) -> None:
        self.down, self.fail_after = False, None

    def wrap(self, db: Any) -> FaultyDatabase:
        return FaultyDatabase(db, self)

    def _before(self) -> None:
        if self.fail_after is not None:
            if self.fail_after <= 0:
                self.down = True
            self.fail_after -= 1
        if self.down:
            self.injected += 1
            raise self._error("store unreachable")

    def _read(self) -> None:
        if self.down and self.reads:
            self.injected += 1
            raise self._error("store unreachable")

    def _after(self) -> None:
        index, self.writes = self.writes, self.writes + 1
        if index == self.lose_ack_at or (self.lose_ack_rate and self._random.random() < self.lose_ack_rate):
            self.injected += 1
            self.lost_acks += 1
            raise self._error("connection lost before the acknowledgement")


class FaultyDatabase:
    def __init__(self, db: Any, faults: Faults) -> None:
        self._db, self._faults = db, faults

    def __getitem__(self, name: str) -> Any:
        collection = self._db[name]
        return FaultyCollection(collection, self._faults) if name in self._faults.collections else collection

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)


class FaultyCollection:
    def __init__(self, collection: Any, faults: Faults) -> None:
        self._collection, self._faults = collection, faults

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._collection, name)
        faults = self._faults
        if name in READS:
            def read(*args: Any, **kwargs: Any) -> Any:
                faults._read()
                return attr(*args, **kwargs)

            return read
        if name not in WRITES:
            return attr

        async def write(*args: Any, **kwargs: Any) -> Any:
            faults._before()
            result = await attr(*args, **kwargs)
            faults._after()
            return result

        return write


class RefusingDatabase:
    """A database whose ``usage_events.insert_many`` behaves like a server with a validation rule:
    documents for which ``refuse(doc)`` is true are not stored and reported as write errors (code
    121, DocumentValidationFailure) in a BulkWriteError raised after the others were inserted, as
    an unordered insert does. Everything else passes through."""

    def __init__(self, db: Any, refuse: Callable[[dict[str, Any]], bool]) -> None:
        self._db, self._refuse = db, refuse
        self.refused = 0

    def __getitem__(self, name: str) -> Any:
        collection = self._db[name]
        return _RefusingCollection(collection, self) if name == "usage_events" else collection

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)


class _RefusingCollection:
    def __init__(self, collection: Any, owner: RefusingDatabase) -> None:
        self._collection, self._owner = collection, owner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._collection, name)

    async def insert_many(self, docs: list[dict[str, Any]], ordered: bool = True) -> Any:
        assert not ordered
        refused = [i for i, doc in enumerate(docs) if self._owner._refuse(doc)]
        accepted = [doc for i, doc in enumerate(docs) if i not in refused]
        errors: list[dict[str, Any]] = []
        if accepted:
            try:
                await self._collection.insert_many(accepted, ordered=False)
            except BulkWriteError as exc:  # duplicates: report them at their index in ``docs``
                positions = [i for i in range(len(docs)) if i not in refused]
                errors += [{**err, "index": positions[err["index"]]} for err in exc.details["writeErrors"]]
        self._owner.refused += len(refused)
        errors += [{"index": i, "code": 121, "errmsg": "Document failed validation"} for i in refused]
        if errors:
            raise BulkWriteError({"writeErrors": sorted(errors, key=lambda e: e["index"]),
                                  "writeConcernErrors": [], "nInserted": len(accepted)})
