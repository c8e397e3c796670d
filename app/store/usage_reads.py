"""Reading usage: bucket queries for reports and quota windows, totals over raw events (``UsageReader``).

Collections: app/store/usage.py. Counters: ``COUNTERS`` (app/records/buckets.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from app.records.buckets import COUNTERS, Granularity, Scope
from app.store.usage import BUCKETS, EVENTS


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



class UsageReader:
    """Reads bucket documents and raw events. Raises the store's errors (pymongo ``PyMongoError``)."""

    def __init__(self, db: Any) -> None:
        self._db = db
        self._events = db[EVENTS]
        self._buckets = db[BUCKETS]


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

