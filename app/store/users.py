"""Users: the people access keys belong to (collection ``users``)."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, IndexModel, ReturnDocument

UserDoc = dict[str, Any]
"""``{"_id": "usr_<hex>", "name", "email", "email_key" (lower-cased e-mail, absent without one),
"status": "active"|"disabled"|"deleted", "created_at", "limits": {...}}``. A deleted user is a
tombstone: ``name`` = a pseudonym (``deleted:<hash>``), no e-mail, ``deleted_at``."""

INDEXES: dict[str, list[IndexModel]] = {
    # One user per e-mail (case-insensitive). Sparse: users without an e-mail have no email_key.
    "users": [IndexModel([("email_key", ASCENDING)], name="email_key_unique", unique=True, sparse=True)],
}


class DuplicateEmails(ValueError):
    """Existing users share e-mail addresses, so the unique index cannot be built. ``duplicates``:
    ``{email_key: [user ids]}``."""

    def __init__(self, duplicates: dict[str, list[str]]) -> None:
        self.duplicates = duplicates
        listed = "; ".join(f"{email}: {', '.join(ids)}" for email, ids in sorted(duplicates.items())[:20])
        super().__init__(f"users: e-mail addresses must be unique, but {len(duplicates)} are shared ({listed}). "
                         "Give each of these users its own e-mail (PATCH /admin/users/{id} with {\"email\": ...}, "
                         "or delete the extra user), then start again.")


def email_key(email: str | None) -> str | None:
    """The unique-index form of an e-mail address: trimmed, lower-cased; None without one."""
    return (email or "").strip().lower() or None


async def ensure_user_indexes(db: Any) -> None:
    """Backfill ``email_key`` on users created before it existed, then build the unique index.
    Raises DuplicateEmails (naming them) when existing users share an address; nothing is changed
    on them then."""
    users = db["users"]
    missing = [doc async for doc in users.find({"email_key": {"$exists": False},
                                                 "email": {"$nin": [None, ""]}}, {"email": 1})]
    if missing:
        seen: dict[str, list[str]] = {}
        async for doc in users.find({"email": {"$nin": [None, ""]}}, {"email": 1}):
            key = email_key(doc.get("email"))
            if key:
                seen.setdefault(key, []).append(doc["_id"])
        duplicates = {key: ids for key, ids in seen.items() if len(ids) > 1}
        if duplicates:
            raise DuplicateEmails(duplicates)
        for doc in missing:
            await users.update_one({"_id": doc["_id"]}, {"$set": {"email_key": email_key(doc.get("email"))}})
    await users.create_indexes(INDEXES["users"])


def new_user_id() -> str:
    return "usr_" + uuid.uuid4().hex[:20]


class UserRepository:
    """CRUD over ``users``. Every method does one store round trip."""

    def __init__(self, db: Any) -> None:
        self._users = db["users"]
        self._identities = db["identities"]

    async def create(self, name: str, email: str | None = None) -> UserDoc:
        """Raises ``pymongo.errors.DuplicateKeyError`` when another user has the e-mail."""
        doc: UserDoc = {"_id": new_user_id(), "name": name, "email": email, "status": "active",
                        "created_at": datetime.now(UTC), "limits": {}}
        if email_key(email):
            doc["email_key"] = email_key(email)
        await self._users.insert_one(doc)
        return doc

    async def find_by_email(self, email: str) -> UserDoc | None:
        """The user with this e-mail, case-insensitively (one indexed lookup)."""
        key = email_key(email)
        return await self._users.find_one({"email_key": key}) if key else None

    async def set_profile(self, user_id: str, *, name: str | None = None, email: str | None = None,
                          clear_email: bool = False) -> UserDoc | None:
        """Change the name and/or e-mail (``clear_email``: remove it). Raises DuplicateKeyError."""
        update: dict[str, Any] = {}
        if name is not None:
            update.setdefault("$set", {})["name"] = name
        if clear_email:
            update.setdefault("$set", {})["email"] = None
            update["$unset"] = {"email_key": ""}
        elif email is not None:
            update.setdefault("$set", {}).update({"email": email, "email_key": email_key(email)})
        if not update:
            return await self.get(user_id)
        return await self._users.find_one_and_update({"_id": user_id, "status": {"$ne": "deleted"}}, update,
                                                     return_document=ReturnDocument.AFTER)

    async def tombstone(self, user_id: str, pseudonym: str) -> UserDoc | None:
        """Delete a user's personal data, keep the id (their usage stays attributed to it): name ->
        ``pseudonym``, e-mail, SSO link and groups removed, status ``deleted``. Also removes their
        SSO identities (collection ``identities``). None when unknown or already deleted."""
        doc = await self._users.find_one_and_update(
            {"_id": user_id, "status": {"$ne": "deleted"}},
            {"$set": {"name": pseudonym, "email": None, "status": "deleted", "deleted_at": datetime.now(UTC),
                      "limits": {}},
             "$unset": {"email_key": "", "sso": "", "idp_groups": "", "groups": ""}},
            return_document=ReturnDocument.AFTER)
        if doc is not None:
            await self._identities.delete_many({"user_id": user_id})
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
        return await self._users.find_one_and_update(
            {"_id": user_id}, {"$set": fields}, return_document=ReturnDocument.AFTER)
