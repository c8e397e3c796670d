"""Usage events at rest (collection ``usage_events``, ``_id`` = event id).

Inserting is idempotent per event: a retried batch hits duplicate-key errors (code 11000) for the
events that already landed, and those count as written.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pymongo.errors import BulkWriteError

from app.usage.events import UsageEvent

DUPLICATE_KEY = 11000


class UsageRepository:
    """Writes and reads raw usage events."""

    def __init__(self, db: Any) -> None:
        self._events = db["usage_events"]

    async def insert_events(self, events: Sequence[UsageEvent]) -> None:
        """Insert a batch (unordered). Raises the store's error unless every failure is a duplicate."""
        if not events:
            return
        try:
            await self._events.insert_many([e.to_document() for e in events], ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(err.get("code") != DUPLICATE_KEY for err in errors) or exc.details.get("writeConcernErrors"):
                raise

    async def totals(self, *, user_id: str | None = None, access_key_id: str | None = None,
                     since: datetime | None = None, until: datetime | None = None) -> dict[str, int]:
        """Sum of requests and the four token counters over matching events."""
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
