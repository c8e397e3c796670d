"""Users: the people access keys belong to (collection ``users``)."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

UserDoc = dict[str, Any]
"""``{"_id": "usr_<hex>", "name", "email", "status": "active"|"disabled", "created_at", "limits": {...}}``"""


def new_user_id() -> str:
    return "usr_" + uuid.uuid4().hex[:20]


class UserRepository:
    """CRUD over ``users``. Every method does one store round trip."""

    def __init__(self, db: Any) -> None:
        self._users = db["users"]

    async def create(self, name: str, email: str | None = None) -> UserDoc:
        doc: UserDoc = {"_id": new_user_id(), "name": name, "email": email, "status": "active",
                        "created_at": datetime.now(UTC), "limits": {}}
        await self._users.insert_one(doc)
        return doc

    async def get(self, user_id: str) -> UserDoc | None:
        return await self._users.find_one({"_id": user_id})

    async def get_many(self, user_ids: list[str]) -> dict[str, UserDoc]:
        """``{id: user}`` for the ids that exist (one round trip; name, e-mail and status only)."""
        if not user_ids:
            return {}
        cursor = self._users.find({"_id": {"$in": list(set(user_ids))}}, {"name": 1, "email": 1, "status": 1})
        return {doc["_id"]: doc async for doc in cursor}

    async def list(self, *, search: str | None = None, status: str | None = None,
                   limit: int = 100, skip: int = 0) -> list[UserDoc]:
        """Newest first. ``search`` matches name or e-mail, case-insensitively, as literal text."""
        query: dict[str, Any] = {}
        if search:
            pattern = {"$regex": re.escape(search), "$options": "i"}
            query["$or"] = [{"name": pattern}, {"email": pattern}]
        if status:
            query["status"] = status
        cursor = self._users.find(query).sort("created_at", -1).skip(skip).limit(limit)
        return await cursor.to_list(length=limit)

    async def update(self, user_id: str, fields: dict[str, Any]) -> UserDoc | None:
        """Set ``fields``; returns the updated user or None when it does not exist."""
        from pymongo import ReturnDocument

        return await self._users.find_one_and_update(
            {"_id": user_id}, {"$set": fields}, return_document=ReturnDocument.AFTER)
