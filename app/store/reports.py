"""Read-only aggregates over the usage collections for the attribution and export views: a
user's sessions (raw events, ``usage_events``) and per-user daily rows (``usage_buckets``).
Each function is one store round trip. Collections and fields as app/store/usage.py writes them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel

INDEXES: dict[str, list[IndexModel]] = {
    # A user's sessions in a time range (the dashboard's top sessions by cost, session_totals).
    "usage_events": [IndexModel([("user_id", ASCENDING), ("session_id", ASCENDING), ("time", ASCENDING)],
                                name="user_session_time")],
}
EXPORT_MAX_ROWS = 500_000


async def session_totals(db: Any, user_id: str, start: datetime, end: datetime, limit: int) -> list[dict[str, Any]]:
    """A user's sessions with events in ``[start, end)``, dearest first: ``{"_id": session id,
    "requests", "cost_usd_micros", "subagent_cost_usd_micros", "subagent_requests",
    "input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens",
    "first", "last", "agents": [agent ids], "estimated_requests"}``. A subagent's event is one
    with a ``parent_agent_id`` (app/usage/attribution.py)."""
    is_sub = {"$gt": [{"$ifNull": ["$parent_agent_id", ""]}, ""]}
    pipeline = [
        {"$match": {"user_id": user_id, "session_id": {"$type": "string"}, "time": {"$gte": start, "$lt": end}}},
        {"$group": {
            "_id": "$session_id", "requests": {"$sum": 1},
            "cost_usd_micros": {"$sum": {"$ifNull": ["$cost_usd_micros", 0]}},
            "subagent_cost_usd_micros": {"$sum": {"$cond": [is_sub, {"$ifNull": ["$cost_usd_micros", 0]}, 0]}},
            "subagent_requests": {"$sum": {"$cond": [is_sub, 1, 0]}},
            "estimated_requests": {"$sum": {"$cond": [{"$eq": ["$cost_estimated", True]}, 1, 0]}},
            "input_tokens": {"$sum": "$input_tokens"}, "output_tokens": {"$sum": "$output_tokens"},
            "cache_creation_input_tokens": {"$sum": "$cache_creation_input_tokens"},
            "cache_read_input_tokens": {"$sum": "$cache_read_input_tokens"},
            "first": {"$min": "$time"}, "last": {"$max": "$time"}, "agents": {"$addToSet": "$agent_id"}}},
        {"$sort": {"cost_usd_micros": DESCENDING, "_id": ASCENDING}},
        {"$limit": limit},
    ]
    return await db["usage_events"].aggregate(pipeline).to_list(length=limit)


async def user_day_buckets(db: Any, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Per-user day buckets starting in ``[start, end)`` (UTC days): ``{"start", "user_id",
    "provider", "model", <counters>}``, oldest first, at most EXPORT_MAX_ROWS."""
    cursor = db["usage_buckets"].find(
        {"scope": "user", "granularity": "day", "start": {"$gte": start, "$lt": end}},
        {"_id": 0, "folds": 0, "expires_at": 0, "scope": 0, "scope_id": 0, "granularity": 0, "access_key_id": 0},
    ).sort([("start", ASCENDING), ("user_id", ASCENDING), ("provider", ASCENDING), ("model", ASCENDING)])
    return await cursor.to_list(length=EXPORT_MAX_ROWS)
