"""Fixed-window request counters shared by every replica (collection ``rate_counters``).

One document per scope and window: ``{"_id": "<scope>:<id>:<window start>", "n": <requests>,
"expires_at"}``, incremented with an atomic ``findAndModify`` upsert (DocumentDB 5.0 supports it; no
transactions needed). A TTL index deletes windows after ``expires_at``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.errors import DuplicateKeyError

COUNTERS = "rate_counters"
INDEXES = {COUNTERS: [IndexModel([("expires_at", ASCENDING)], name="expires_at_ttl", expireAfterSeconds=0)]}


class RateCounterRepository:
    """``await hit(counter_id, expires_at=...) -> count after this hit``. Raises pymongo errors."""

    def __init__(self, db: Any) -> None:
        self._counters = db[COUNTERS]

    async def hit(self, counter_id: str, *, expires_at: datetime) -> int:
        update = {"$inc": {"n": 1}, "$setOnInsert": {"expires_at": expires_at}}
        try:
            doc = await self._counters.find_one_and_update(
                {"_id": counter_id}, update, upsert=True, return_document=ReturnDocument.AFTER)
        except DuplicateKeyError:
            # Two replicas created the window at once; the document exists now.
            doc = await self._counters.find_one_and_update(
                {"_id": counter_id}, update, return_document=ReturnDocument.AFTER)
        return int(doc["n"]) if doc else 1

    async def peek(self, counter_id: str) -> int:
        """The current count without incrementing it (0 when the window has no document)."""
        doc = await self._counters.find_one({"_id": counter_id}, {"n": 1})
        return int(doc["n"]) if doc else 0
