"""Cooldowns shared by every replica (collection ``cooldowns``, TTL index on ``until``).

``_id`` is a fingerprint of the client's Anthropic credential (never the credential itself).
Writes use ``$max`` so a shorter cooldown never shortens a longer one; DocumentDB 5.0 supports it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, IndexModel

INDEXES = {"cooldowns": [IndexModel([("until", ASCENDING)], name="until_ttl", expireAfterSeconds=0)]}


class CooldownRepository:
    def __init__(self, db: Any) -> None:
        self._cooldowns = db["cooldowns"]

    async def get(self, fingerprint: str) -> dict[str, Any] | None:
        """``{"_id", "until": datetime (UTC), "reason"}`` or None. Expired documents may linger
        until the TTL monitor runs (every 60 s), so callers compare ``until`` with now."""
        doc = await self._cooldowns.find_one({"_id": fingerprint})
        if doc and doc["until"].tzinfo is None:
            doc["until"] = doc["until"].replace(tzinfo=UTC)
        return doc

    async def start(self, fingerprint: str, until: datetime, reason: str) -> None:
        await self._cooldowns.update_one(
            {"_id": fingerprint},
            {"$max": {"until": until}, "$set": {"reason": reason, "set_at": datetime.now(UTC)}},
            upsert=True)
