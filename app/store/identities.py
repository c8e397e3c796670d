"""Single sign-on records (app/sso): people's IdP identities, pending sign-in flows, and SSO
sessions. Raises pymongo errors (``STORE_ERRORS``) as they come; ``DuplicateKeyError`` from
:meth:`IdentityRepository.create` when the e-mail belongs to another identity.

- ``identities``: ``{"_id": "<issuer>|<sub>", "issuer", "sub", "user_id", "email", "email_key"
  (lower-cased, unique index: one person per e-mail), "created_at", "last_login_at"}``. The user
  document (``users``) gets ``"sso": {"issuer", "sub"}``, ``"idp_groups"`` and ``"groups"``.
- ``oidc_flows``: one per started sign-in, ``{"_id": sha256(state), "nonce", "code_verifier",
  "next", "expires_at"}``; taken (found and deleted) by the callback, so a state works once. A TTL
  index removes abandoned ones.
- SSO sessions live in ``admin_sessions`` (app/store/admins.py) beside the password sessions, so
  the dashboard's logout and revocation work on them unchanged: ``{"_id", "username": <actor,
  "oidc:<sub> (<email>)">, "kind": "oidc", "user_id", "admin": bool, "created_at", "last_seen_at",
  "expires_at"}``. ``expires_at`` slides with use (idle timeout) up to ``absolute_expires_at``;
  the TTL index there removes idle ones.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, IndexModel

from app.store.admins import SESSIONS

IDENTITIES, FLOWS = "identities", "oidc_flows"
INDEXES: dict[str, list[IndexModel]] = {
    IDENTITIES: [IndexModel([("email_key", ASCENDING)], name="email_key_unique", unique=True),
                 IndexModel([("user_id", ASCENDING)], name="user_id")],
    FLOWS: [IndexModel([("expires_at", ASCENDING)], name="expires_at_ttl", expireAfterSeconds=0)],
    SESSIONS: [IndexModel([("user_id", ASCENDING)], name="user_id", sparse=True)],
}


def identity_id(issuer: str, sub: str) -> str:
    return f"{issuer}|{sub}"


class IdentityRepository:
    """IdP identities and the users they sign in as."""

    def __init__(self, db: Any) -> None:
        self._identities, self._users = db[IDENTITIES], db["users"]

    async def get(self, issuer: str, sub: str) -> dict[str, Any] | None:
        return await self._identities.find_one({"_id": identity_id(issuer, sub)})

    async def create(self, issuer: str, sub: str, *, user_id: str, email: str) -> dict[str, Any]:
        now = datetime.now(UTC)
        doc = {"_id": identity_id(issuer, sub), "issuer": issuer, "sub": sub, "user_id": user_id, "email": email,
               "email_key": email.lower(), "created_at": now, "last_login_at": now}
        await self._identities.insert_one(doc)
        return doc

    async def signed_in(self, issuer: str, sub: str, *, email: str) -> None:
        """Record a sign-in; the e-mail follows the IdP (DuplicateKeyError if another identity has it)."""
        await self._identities.update_one({"_id": identity_id(issuer, sub)}, {"$set": {
            "email": email, "email_key": email.lower(), "last_login_at": datetime.now(UTC)}})

    async def unlinked_user_by_email(self, email: str) -> list[dict[str, Any]]:
        """Users an admin created with this e-mail (any case) that no identity signs in as yet."""
        pattern = {"$regex": f"^{re.escape(email)}$", "$options": "i"}
        return await self._users.find({"email": pattern, "sso": {"$exists": False}}).to_list(length=2)

    async def set_user_sso(self, user_id: str, fields: dict[str, Any]) -> dict[str, Any] | None:
        """Set the SSO fields (``sso``, ``idp_groups``, ``groups``, ``email``) of a user; returns it."""
        from pymongo import ReturnDocument

        return await self._users.find_one_and_update({"_id": user_id}, {"$set": fields},
                                                     return_document=ReturnDocument.AFTER)


class OidcFlowRepository:
    """Sign-ins started and not finished, by the SHA-256 of their ``state``."""

    def __init__(self, db: Any) -> None:
        self._flows = db[FLOWS]

    async def create(self, state: str, *, nonce: str, code_verifier: str, next_path: str,
                     expires_at: datetime) -> None:
        await self._flows.insert_one({"_id": _digest(state), "nonce": nonce, "code_verifier": code_verifier,
                                      "next": next_path, "expires_at": expires_at})

    async def take(self, state: str) -> dict[str, Any] | None:
        """The flow of ``state``, deleted in the same call (a state is good for one callback)."""
        return await self._flows.find_one_and_delete({"_id": _digest(state)})


class SsoSessionRepository:
    """SSO sessions, in the admin sessions collection."""

    def __init__(self, db: Any) -> None:
        self._sessions = db[SESSIONS]

    async def create(self, session_id: str, *, actor: str, user_id: str, admin: bool, expires_at: datetime,
                     absolute_expires_at: datetime) -> None:
        now = datetime.now(UTC)
        await self._sessions.insert_one({"_id": session_id, "username": actor, "kind": "oidc", "user_id": user_id,
                                         "admin": admin, "created_at": now, "last_seen_at": now,
                                         "expires_at": expires_at, "absolute_expires_at": absolute_expires_at})

    async def get(self, session_id: str) -> dict[str, Any] | None:
        return await self._sessions.find_one({"_id": session_id, "kind": "oidc"})

    async def touch(self, session_id: str, *, last_seen_at: datetime, expires_at: datetime) -> None:
        await self._sessions.update_one({"_id": session_id},
                                        {"$set": {"last_seen_at": last_seen_at, "expires_at": expires_at}})

    async def delete(self, session_id: str) -> None:
        await self._sessions.delete_one({"_id": session_id, "kind": "oidc"})

    async def delete_for_user(self, user_id: str) -> int:
        return (await self._sessions.delete_many({"user_id": user_id, "kind": "oidc"})).deleted_count


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()
