"""Usage at rest: the collections and their indexes.

- ``usage_events``: raw events (``_id`` = event id), kept ``usage_event_ttl_days``.
- ``usage_buckets``: time-bucket aggregates (app/records/buckets.py), fine ones expire (``Retention``).
- ``usage_folds``: the write protocol's fold journal (app/store/usage_write.py).
- ``usage_dead_letter``: what the store cannot take (app/store/usage_write.py).

Writes: ``UsageWriter`` (app/store/usage_write.py). Reads: ``UsageReader`` (app/store/usage_reads.py).
"""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.errors import OperationFailure

EVENTS, BUCKETS, FOLDS = "usage_events", "usage_buckets", "usage_folds"
DEAD_LETTER = "usage_dead_letter"
_INDEX_OPTIONS_CONFLICT = (85, 86)


def usage_indexes(event_ttl_days: int) -> dict[str, list[IndexModel]]:
    """Indexes of every usage collection (TTL: raw events after ``event_ttl_days``; buckets, folds and
    dead letters at ``expires_at``)."""
    return {
        EVENTS: [IndexModel([("time", ASCENDING)], name="time_ttl", expireAfterSeconds=event_ttl_days * 86400),
                 IndexModel([("fold_id", ASCENDING)], name="fold_id")],
        FOLDS: [IndexModel([("done", ASCENDING), ("started_at", ASCENDING)], name="done_started"),
                IndexModel([("expires_at", ASCENDING)], name="expires_at_ttl", expireAfterSeconds=0)],
        DEAD_LETTER: [IndexModel([("expires_at", ASCENDING)], name="expires_at_ttl", expireAfterSeconds=0),
                      IndexModel([("dead_lettered_at", ASCENDING)], name="dead_lettered_at")],
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

