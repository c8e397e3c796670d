"""Admin API keys for automation (collection ``admin_api_keys``): only the HMAC of a key is stored.

::

    {"_id": "adk_<hex>", "name", "key_hash", "prefix", "access": "read_only" | "read_write",
     "status": "active" | "revoked", "created_at", "created_by", "last_used_at", "revoked_at"}

Raises pymongo errors.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, IndexModel, ReturnDocument

from app.store.ids import new_id
from app.store.paging import find_page

KEYS = "admin_api_keys"
INDEXES = {KEYS: [IndexModel([("key_hash", ASCENDING)], name="key_hash_unique", unique=True)]}

AdminApiKeyDoc = dict[str, Any]


class AdminApiKeyRepository:
    def __init__(self, db: Any) -> None:
        self._keys = db[KEYS]

    async def create(self, *, name: str, key_hash: str, prefix: str, access: str, created_by: str) -> AdminApiKeyDoc:
        doc: AdminApiKeyDoc = {"_id": new_id("adk"), "name": name, "key_hash": key_hash, "prefix": prefix,
                               "access": access, "status": "active", "created_at": datetime.now(UTC),
                               "created_by": created_by, "last_used_at": None, "revoked_at": None}
        await self._keys.insert_one(doc)
        return doc

    async def find_by_hash(self, key_hash: str) -> AdminApiKeyDoc | None:
        return await self._keys.find_one({"key_hash": key_hash})

    async def get(self, key_id: str) -> AdminApiKeyDoc | None:
        return await self._keys.find_one({"_id": key_id})

    async def page(self, *, limit: int, after_id: str | None, before_id: str | None) -> tuple[list[AdminApiKeyDoc], bool]:
        return await find_page(self._keys, {}, limit=limit, after_id=after_id, before_id=before_id, descending=True)

    async def revoke(self, key_id: str) -> AdminApiKeyDoc | None:
        return await self._keys.find_one_and_update(
            {"_id": key_id}, {"$set": {"status": "revoked", "revoked_at": datetime.now(UTC)}},
            return_document=ReturnDocument.AFTER)

    async def touch_last_used(self, key_id: str, when: datetime) -> None:
        await self._keys.update_one({"_id": key_id}, {"$set": {"last_used_at": when}})
