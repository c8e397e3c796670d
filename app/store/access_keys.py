"""Access keys (collection ``access_keys``): only the HMAC of a key and its display prefix are stored."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ReturnDocument

AccessKeyDoc = dict[str, Any]
"""``{"_id": "ak_<hex>", "user_id", "key_hash", "prefix", "name", "status": "active"|"revoked"|"rotated",
"created_at", "last_used_at", "expires_at" (set on the old key by a rotation with a grace period),
"fallback_policy", "limits": {...}, "bedrock_key": {encrypted envelope} | absent}``"""


def new_access_key_id() -> str:
    return "ak_" + uuid.uuid4().hex[:20]


class AccessKeyRepository:
    """Store operations on access keys; one round trip each."""

    def __init__(self, db: Any) -> None:
        self._keys = db["access_keys"]

    async def create(self, *, user_id: str, key_hash: str, prefix: str, name: str | None = None,
                     fallback_policy: str | None = None) -> AccessKeyDoc:
        doc: AccessKeyDoc = {"_id": new_access_key_id(), "user_id": user_id, "key_hash": key_hash,
                             "prefix": prefix, "name": name, "status": "active",
                             "created_at": datetime.now(UTC), "last_used_at": None,
                             "expires_at": None, "fallback_policy": fallback_policy, "limits": {}}
        await self._keys.insert_one(doc)
        return doc

    async def get(self, key_id: str) -> AccessKeyDoc | None:
        return await self._keys.find_one({"_id": key_id})

    async def find_by_hash(self, key_hash: str) -> AccessKeyDoc | None:
        return await self._keys.find_one({"key_hash": key_hash})

    async def get_many(self, key_ids: list[str]) -> dict[str, AccessKeyDoc]:
        """``{id: key}`` for the ids that exist (one round trip; never the hash or the Bedrock key)."""
        if not key_ids:
            return {}
        cursor = self._keys.find({"_id": {"$in": list(set(key_ids))}},
                                 {"user_id": 1, "prefix": 1, "name": 1, "status": 1})
        return {doc["_id"]: doc async for doc in cursor}

    async def list_for_user(self, user_id: str, *, limit: int = 200) -> list[AccessKeyDoc]:
        cursor = self._keys.find({"user_id": user_id}).sort("created_at", -1).limit(limit)
        return await cursor.to_list(length=limit)

    async def revoke(self, key_id: str) -> AccessKeyDoc | None:
        """Mark revoked now; returns the document after the change (None if unknown)."""
        return await self._keys.find_one_and_update(
            {"_id": key_id}, {"$set": {"status": "revoked", "revoked_at": datetime.now(UTC)}},
            return_document=ReturnDocument.AFTER)

    async def expire_after(self, key_id: str, grace_s: int) -> AccessKeyDoc | None:
        """Rotation: the old key stops working after ``grace_s`` seconds (0: at once, status
        ``rotated``; with a grace period it stays ``active`` until ``expires_at``, marked ``rotated_at``)."""
        if grace_s <= 0:
            now = datetime.now(UTC)
            return await self._keys.find_one_and_update(
                {"_id": key_id}, {"$set": {"status": "rotated", "rotated_at": now, "expires_at": now}},
                return_document=ReturnDocument.AFTER)
        return await self._keys.find_one_and_update(
            {"_id": key_id}, {"$set": {"expires_at": datetime.now(UTC) + timedelta(seconds=grace_s),
                                       "rotated_at": datetime.now(UTC)}},
            return_document=ReturnDocument.AFTER)

    async def update(self, key_id: str, fields: dict[str, Any]) -> AccessKeyDoc | None:
        return await self._keys.find_one_and_update(
            {"_id": key_id}, {"$set": fields}, return_document=ReturnDocument.AFTER)

    async def unset(self, key_id: str, *fields: str) -> AccessKeyDoc | None:
        return await self._keys.find_one_and_update(
            {"_id": key_id}, {"$unset": {field: "" for field in fields}}, return_document=ReturnDocument.AFTER)

    async def revoke_all_for_user(self, user_id: str) -> list[AccessKeyDoc]:
        """Revoke every active key of ``user_id``; returns them as they were (for cache eviction)."""
        docs = await self._keys.find({"user_id": user_id, "status": "active"}).to_list(length=None)
        if docs:
            await self._keys.update_many({"user_id": user_id, "status": "active"},
                                         {"$set": {"status": "revoked", "revoked_at": datetime.now(UTC)}})
        return docs

    async def touch_last_used(self, key_id: str, when: datetime) -> None:
        await self._keys.update_one({"_id": key_id}, {"$set": {"last_used_at": when}})
