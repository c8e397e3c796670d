"""A fault injector for the store: wraps a database so that writes to chosen collections fail.

Not a mock of the code under test: the real repository runs against the real (mongomock-motor or
MongoDB) collections; this only makes some calls raise ``AutoReconnect`` the way a network failure
or a failover does, either *before* the write (outage) or *after* it was applied (a lost
acknowledgement, the ambiguous case that makes naive retries double count).
"""

from __future__ import annotations

from typing import Any

from pymongo.errors import AutoReconnect

WRITES = frozenset({"insert_many", "insert_one", "update_one", "update_many", "bulk_write",
                    "find_one_and_update", "delete_many"})
USAGE_COLLECTIONS = ("usage_events", "usage_buckets", "usage_folds")


class Faults:
    """Switches: ``down`` (every write fails before reaching the store); ``fail_after`` (N more
    writes succeed, then ``down``); ``lose_ack_at`` (the write with this index, counting every write
    that reached the store from 0, is applied and then raises). ``writes`` counts writes that reached
    the store; ``injected`` counts raised errors. ``heal()`` ends an outage."""

    def __init__(self, collections: tuple[str, ...] = USAGE_COLLECTIONS) -> None:
        self.collections = collections
        self.down = False
        self.fail_after: int | None = None
        self.lose_ack_at: int | None = None
        self.writes = 0
        self.injected = 0

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
            raise AutoReconnect("injected: store unreachable")

    def _after(self) -> None:
        index, self.writes = self.writes, self.writes + 1
        if index == self.lose_ack_at:
            self.injected += 1
            raise AutoReconnect("injected: connection lost before the acknowledgement")


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
        if name not in WRITES:
            return attr
        faults = self._faults

        async def write(*args: Any, **kwargs: Any) -> Any:
            faults._before()
            result = await attr(*args, **kwargs)
            faults._after()
            return result

        return write
