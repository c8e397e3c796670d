"""User and key lifecycle beyond create/disable (issue 14 section 4): edit a user's name and e-mail,
delete a user (keep their usage under a pseudonym), import users from CSV, set a key's expiry.
One audit entry per change, like app/admin/service.py (whose repositories and key cache it shares).

Deleting a user keeps every usage event and bucket: they are keyed by the user's random id
(``usr_<hex>``), which carries no personal data. The user document becomes a tombstone whose name
is ``deleted:<hash>`` (an HMAC of the id under the proxy's secret key: stable, not reversible),
with no e-mail, no SSO identity and no groups; every key is revoked. Reports, CSV exports and the
audit log's names then show the pseudonym.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pymongo.errors import DuplicateKeyError

from app.admin.service import Actor, AdminService
from app.admin.user_import import ImportRow
from app.errors import InvalidRequest, NotFound
from app.admin.key_state import key_state
from app.store.access_keys import AccessKeyDoc
from app.store.users import UserDoc

NAME_MAX_CHARS = 200
EMAIL_MAX_CHARS = 320


def pseudonym(secret_key: bytes, user_id: str) -> str:
    """``deleted:<12 hex>``: HMAC-SHA256 of the user id under the proxy's secret key."""
    return "deleted:" + hmac.new(secret_key, user_id.encode(), hashlib.sha256).hexdigest()[:12]


def clean_email(email: str | None) -> str | None:
    """Trimmed e-mail or None; InvalidRequest when it is not an address."""
    email = (email or "").strip()
    if not email:
        return None
    if len(email) > EMAIL_MAX_CHARS or "@" not in email or any(c.isspace() for c in email):
        raise InvalidRequest(f"email: {email[:80]!r} is not an e-mail address")
    return email


@dataclass
class ImportResult:
    dry_run: bool
    created: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)


class UserLifecycle:
    """Raises NotFound (404) for unknown ids, InvalidRequest (400) for bad input or a taken e-mail."""

    def __init__(self, admin: AdminService, secret_key: bytes) -> None:
        self._admin, self._secret = admin, secret_key
        self.users, self.keys, self.audit = admin.users, admin.keys, admin.audit

    async def update_user(self, actor: Actor, user_id: str, *, name: str | None = None,
                          email: str | None = None, email_set: bool = False) -> UserDoc:
        """Change ``name`` and/or ``email`` (``email_set`` with an empty ``email`` removes it)."""
        current = await self._admin.get_user(user_id)
        if current.get("status") == "deleted":
            raise InvalidRequest(f"user {user_id!r} is deleted")
        if name is not None:
            name = name.strip()
            if not name or len(name) > NAME_MAX_CHARS:
                raise InvalidRequest(f"name: must be 1 to {NAME_MAX_CHARS} characters")
        new_email = clean_email(email) if email_set else None
        try:
            doc = await self.users.set_profile(user_id, name=name, email=new_email,
                                               clear_email=email_set and new_email is None)
        except DuplicateKeyError:
            raise InvalidRequest(f"email: {new_email!r} already belongs to another user") from None
        if doc is None:
            raise NotFound(f"user {user_id!r} not found")
        changes = {k: {"before": current.get(k), "after": doc.get(k)} for k in ("name", "email")
                   if current.get(k) != doc.get(k)}
        await self.audit.write(actor=actor.username, ip=actor.ip, action="user.update", target_type="user",
                               target_id=user_id, details=changes)
        return doc

    async def delete_user(self, actor: Actor, user_id: str) -> UserDoc:
        """Tombstone the user and revoke their keys (module docstring). Their SSO sessions end at
        their next request (the user is no longer active)."""
        await self._admin.get_user(user_id)
        alias = pseudonym(self._secret, user_id)
        doc = await self.users.tombstone(user_id, alias)
        if doc is None:
            raise InvalidRequest(f"user {user_id!r} is already deleted")
        revoked = await self.keys.revoke_all_for_user(user_id)
        for key in await self.keys.list_for_user(user_id, limit=100_000):
            self._admin.forget_key(key["key_hash"])
        await self.audit.write(actor=actor.username, ip=actor.ip, action="user.delete", target_type="user",
                               target_id=user_id, details={"pseudonym": alias, "keys_revoked": len(revoked)})
        return doc

    async def import_users(self, actor: Actor, rows: list[ImportRow], *, dry_run: bool = False) -> ImportResult:
        """Create a user per row; a row whose e-mail already belongs to a user is skipped (so a
        second run creates nobody twice). ``rows`` come from app/admin/user_import.py parse_import."""
        result = ImportResult(dry_run=dry_run)
        for row in rows:
            existing = await self.users.find_by_email(row.email) if row.email else None
            if existing is not None:
                result.skipped.append({"name": row.name, "email": row.email, "id": existing["_id"],
                                       "reason": "e-mail exists"})
            elif dry_run:
                result.created.append({"name": row.name, "email": row.email})
            else:
                try:
                    user = await self._admin.create_user(actor, row.name, row.email)
                except InvalidRequest:  # the e-mail was taken meanwhile (unique index)
                    result.skipped.append({"name": row.name, "email": row.email, "id": None,
                                           "reason": "e-mail exists"})
                    continue
                result.created.append({"id": user["_id"], "name": user["name"], "email": user.get("email")})
        if not dry_run and result.created:
            await self.audit.write(actor=actor.username, ip=actor.ip, action="user.import", target_type=None,
                                   target_id=None, details={"created": len(result.created),
                                                            "skipped": len(result.skipped)})
        return result

    async def set_key_expiry(self, actor: Actor, key_id: str, expires_at: datetime | None) -> AccessKeyDoc:
        """Set (a future time, timezone-aware or UTC) or clear (None) an active key's expiry; the key is
        refused from then on (this replica at once, others within ``key_cache_ttl_s``)."""
        doc = await self._admin.get_key(key_id)
        if doc.get("status") != "active" or doc.get("rotated_at"):
            raise InvalidRequest(f"access key {key_id!r} is {key_state(doc)}; only active keys take an expiry")
        if expires_at is not None:
            expires_at = expires_at if expires_at.tzinfo else expires_at.replace(tzinfo=UTC)
            if expires_at <= datetime.now(UTC):
                raise InvalidRequest("expires_at: must be in the future")
        updated = await self.keys.update(key_id, {"expires_at": expires_at})
        if updated is None:
            raise NotFound(f"access key {key_id!r} not found")
        self._admin.forget_key(updated["key_hash"])
        await self.audit.write(actor=actor.username, ip=actor.ip, action="key.expiry", target_type="access_key",
                               target_id=key_id, details={"expires_at": expires_at.isoformat() if expires_at else None})
        return updated
