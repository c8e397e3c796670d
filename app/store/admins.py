"""The admin account, its sessions and its login-attempt counters (collections ``admins``,
``admin_sessions``, ``login_attempts``). Raises pymongo errors (``STORE_ERRORS``) as they come.

- ``admins``: ``{"username", "password_hash" (argon2id), "updated_at"}`` (unique index on username).
- ``admin_sessions``: one document per live admin bearer token or dashboard session:
  ``{"_id": <jti>, "username", "kind": "token"|"ui", "created_at", "expires_at"}``. A token or cookie
  is valid only while its document exists: logout deletes it, a password change deletes them all.
  A TTL index removes expired ones.
- ``login_attempts``: fixed one-minute windows, ``{"_id": "<scope>:<sha256 of id>:<window start>",
  "n", "expires_at"}``, incremented with an atomic ``findAndModify`` ``$inc`` upsert before the
  password is checked, so concurrent attempts on any replica are counted exactly. A TTL index
  removes old windows. All of it is inside DocumentDB 5.0's subset (no transactions).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.errors import DuplicateKeyError

ADMINS, SESSIONS, ATTEMPTS = "admins", "admin_sessions", "login_attempts"
INDEXES: dict[str, list[IndexModel]] = {
    SESSIONS: [IndexModel([("expires_at", ASCENDING)], name="expires_at_ttl", expireAfterSeconds=0),
               IndexModel([("username", ASCENDING)], name="username")],
    ATTEMPTS: [IndexModel([("expires_at", ASCENDING)], name="expires_at_ttl", expireAfterSeconds=0)],
}


class AdminRepository:
    """The admin password hash."""

    def __init__(self, db: Any) -> None:
        self._admins = db[ADMINS]

    async def password_hash(self, username: str) -> str | None:
        doc = await self._admins.find_one({"username": username}, {"password_hash": 1})
        return doc.get("password_hash") if doc else None

    async def set_password_hash(self, username: str, password_hash: str) -> None:
        await self._admins.update_one(
            {"username": username},
            {"$set": {"password_hash": password_hash, "updated_at": datetime.now(UTC)}}, upsert=True)


class AdminSessionRepository:
    """Live admin sessions (bearer tokens and dashboard cookies), by id (``jti``)."""

    def __init__(self, db: Any) -> None:
        self._sessions = db[SESSIONS]

    async def create(self, session_id: str, *, username: str, kind: str, expires_at: datetime) -> None:
        await self._sessions.insert_one({"_id": session_id, "username": username, "kind": kind,
                                         "created_at": datetime.now(UTC), "expires_at": expires_at})

    async def get(self, session_id: str) -> dict[str, Any] | None:
        """The session, or None when revoked or unknown. Expired ones may linger until the TTL
        monitor runs (every 60 s): callers check ``expires_at`` (the signature's age covers it too)."""
        return await self._sessions.find_one({"_id": session_id})

    async def delete(self, session_id: str) -> bool:
        return (await self._sessions.delete_one({"_id": session_id})).deleted_count == 1

    async def delete_all(self, username: str) -> int:
        return (await self._sessions.delete_many({"username": username})).deleted_count


class LoginAttemptRepository:
    """``await hit(scope, ident, window_start, expires_at) -> attempts in this window, this one included``."""

    def __init__(self, db: Any) -> None:
        self._attempts = db[ATTEMPTS]

    async def hit(self, scope: str, ident: str, *, window_start: int, expires_at: datetime) -> int:
        # Hash the client-supplied part: bounded ids, and no usernames typed by strangers at rest.
        digest = hashlib.sha256(ident.encode("utf-8", "replace")).hexdigest()[:32]
        counter_id = f"{scope}:{digest}:{window_start}"
        update = {"$inc": {"n": 1}, "$setOnInsert": {"expires_at": expires_at}}
        try:
            doc = await self._attempts.find_one_and_update(
                {"_id": counter_id}, update, upsert=True, return_document=ReturnDocument.AFTER)
        except DuplicateKeyError:
            # Two callers created the window at once; the document exists now.
            doc = await self._attempts.find_one_and_update(
                {"_id": counter_id}, update, return_document=ReturnDocument.AFTER)
        return int(doc["n"]) if doc else 1

    async def refund(self, scope: str, ident: str, *, window_start: int) -> None:
        """Undo one hit (a successful login does not count against the limit)."""
        digest = hashlib.sha256(ident.encode("utf-8", "replace")).hexdigest()[:32]
        await self._attempts.update_one({"_id": f"{scope}:{digest}:{window_start}", "n": {"$gt": 0}},
                                        {"$inc": {"n": -1}})
