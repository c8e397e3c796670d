"""Admin operations shared by the JSON API and the dashboard: one code path, one audit entry each
(written here, never by a route).

Plaintext access keys exist only in the return value of :meth:`create_key` / :meth:`rotate_key`;
only their HMAC is stored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pymongo.errors import DuplicateKeyError

from app.admin.key_state import key_state
from app.auth.access import AccessKeyResolver
from app.auth.admin import AdminAuth, AdminLogin
from app.auth.keys import display_prefix, generate_access_key, hash_access_key
from app.crypto.envelope import Cipher, bedrock_key_context
from app.errors import AuthenticationFailed, InvalidRequest, NotFound
from app.store.access_keys import AccessKeyDoc, AccessKeyRepository
from app.store.audit import AuditRepository
from app.store.users import UserDoc, UserRepository
from app.usage.limits import merge_limits

FALLBACK_POLICIES = ("anthropic_first", "bedrock_only", "anthropic_only")
USER_STATUSES = ("active", "disabled")
BEDROCK_KEY_MAX_CHARS = 4096


@dataclass(frozen=True)
class Actor:
    """Who performs an admin action, and from where (for the audit log)."""

    username: str
    ip: str | None


@dataclass(frozen=True)
class IssuedKey:
    """A freshly issued key: ``key`` is the plaintext, shown to the admin once."""

    key: str
    doc: AccessKeyDoc


class AdminService:
    """Admin sign-in, users and keys. Raises NotFound (404) for unknown ids, InvalidRequest (400) for
    bad input. ``admin_auth`` (app/auth/admin.py) is needed by :meth:`login` and :meth:`logout` only."""

    def __init__(self, users: UserRepository, keys: AccessKeyRepository, audit: AuditRepository,
                 resolver: AccessKeyResolver, secret_key: bytes, *, rotate_grace_s: int = 0,
                 cipher: Cipher | None = None, on_bedrock_key_change: Callable[[str], None] | None = None,
                 admin_auth: AdminAuth | None = None) -> None:
        self.users, self.keys, self.audit = users, keys, audit
        self._admin_auth = admin_auth
        self._resolver, self._secret = resolver, secret_key
        self._rotate_grace_s = rotate_grace_s
        self._cipher = cipher
        self._on_bedrock_key_change = on_bedrock_key_change or (lambda _key_id: None)

    def _auth(self) -> AdminAuth:
        if self._admin_auth is None:
            raise RuntimeError("AdminService was built without admin_auth")
        return self._admin_auth

    async def login(self, actor: Actor, password: str, *, via: Literal["api", "ui"]) -> AdminLogin:
        """Sign ``actor.username`` in (a bearer token for ``api``, a dashboard session for ``ui``) and
        audit ``admin.login`` (``details.via``). Raises RateLimited (429), AuthenticationFailed (401:
        audited as ``admin.login_failed``, never with the password), ServiceUnavailable (503)."""
        try:
            grant = await self._auth().login(actor.username, password, actor.ip or "",
                                             kind="token" if via == "api" else "ui")
        except AuthenticationFailed:
            await self.audit.write_failed_login(username=actor.username, ip=actor.ip, via=via)
            raise
        await self.audit.write(actor=actor.username, ip=actor.ip, action="admin.login", details={"via": via})
        return grant

    async def logout(self, actor: Actor | None, session_id: str | None, *, via: Literal["api", "ui"],
                     everywhere: bool = False) -> int:
        """End the session ``session_id`` (``everywhere``: every admin token and dashboard session)
        and audit ``admin.logout`` when there is an ``actor`` (the API's entry also says how many
        sessions ended: ``details.revoked``). Returns that number."""
        if everywhere:
            revoked = await self._auth().logout_everywhere()
        elif session_id:
            await self._auth().logout(session_id)
            revoked = 1
        else:
            revoked = 0
        if actor is not None:
            details: dict[str, Any] = {"via": via, "revoked": revoked} if via == "api" else {"via": via}
            await self.audit.write(actor=actor.username, ip=actor.ip, action="admin.logout", details=details)
        return revoked

    async def reset_password(self, actor: Actor, password: str) -> int:
        """Set the admin account's password (the stored hash) to ``password``, revoking every admin
        session and token first, so the count includes them all (``ensure_account`` revokes silently
        too); audit ``admin.password_reset`` (``details.revoked``, ``details.username``; never the
        password). Returns that count. Raises what the store raises."""
        auth = self._auth()
        revoked = await auth.logout_everywhere()
        await auth.ensure_account(password)
        await self.audit.write(actor=actor.username, ip=actor.ip, action="admin.password_reset",
                               details={"revoked": revoked, "username": auth.username})
        return revoked

    async def create_user(self, actor: Actor, name: str, email: str | None) -> UserDoc:
        name = name.strip()
        if not name:
            raise InvalidRequest("name: must not be empty")
        try:
            user = await self.users.create(name, (email or "").strip() or None)
        except DuplicateKeyError:  # the users.email_key unique index (app/store/users.py)
            raise InvalidRequest(f"email: {(email or '').strip()!r} already belongs to another user") from None
        await self.audit.write(actor=actor.username, ip=actor.ip, action="user.create",
                               target_type="user", target_id=user["_id"], details={"name": name})
        return user

    async def set_user_status(self, actor: Actor, user_id: str, status: str) -> UserDoc:
        """``status`` "active" | "disabled". A disabled user's keys are refused (401) at once on this
        replica, on others within ``key_cache_ttl_s``; their SSO sessions end at their next request
        (app/sso/sessions.py). Raises InvalidRequest (400), NotFound (404)."""
        if status not in USER_STATUSES:
            raise InvalidRequest(f"status: must be one of {', '.join(USER_STATUSES)}")
        doc = await self.users.update(user_id, {"status": status})
        if doc is None:
            raise NotFound(f"user {user_id!r} not found")
        for key in await self.keys.list_for_user(user_id, limit=100_000):
            self._resolver.forget(key["key_hash"])
        await self.audit.write(actor=actor.username, ip=actor.ip, action="user.status", target_type="user",
                               target_id=user_id, details={"status": status})
        return doc

    def forget_key(self, key_hash: str) -> None:
        """Drop one key from this replica's key cache (after a change that refuses it)."""
        self._resolver.forget(key_hash)

    async def get_user(self, user_id: str) -> UserDoc:
        user = await self.users.get(user_id)
        if user is None:
            raise NotFound(f"user {user_id!r} not found")
        return user

    async def get_key(self, key_id: str) -> AccessKeyDoc:
        doc = await self.keys.get(key_id)
        if doc is None:
            raise NotFound(f"access key {key_id!r} not found")
        return doc

    async def create_key(self, actor: Actor, user_id: str, *, name: str | None = None,
                         fallback_policy: str | None = None) -> IssuedKey:
        await self.get_user(user_id)
        _check_policy(fallback_policy)
        key = generate_access_key()
        doc = await self.keys.create(user_id=user_id, key_hash=hash_access_key(self._secret, key),
                                     prefix=display_prefix(key), name=name, fallback_policy=fallback_policy)
        await self.audit.write(actor=actor.username, ip=actor.ip, action="key.create", target_type="access_key",
                               target_id=doc["_id"], details={"user_id": user_id, "prefix": doc["prefix"]})
        return IssuedKey(key=key, doc=doc)

    async def rotate_key(self, actor: Actor, key_id: str) -> IssuedKey:
        """Issue a new key with the same owner and settings; the old one stops after the grace period."""
        old = await self.get_key(key_id)
        if old.get("status") != "active":
            raise InvalidRequest(f"access key {key_id!r} is {old.get('status')}; only active keys rotate")
        key = generate_access_key()
        doc = await self.keys.create(user_id=old["user_id"], key_hash=hash_access_key(self._secret, key),
                                     prefix=display_prefix(key), name=old.get("name"),
                                     fallback_policy=old.get("fallback_policy"))
        carried: dict[str, Any] = {"limits": old["limits"]} if old.get("limits") else {}
        if old.get("bedrock_key") and self._cipher is not None:
            # The envelope is bound to the old key's id: re-seal it for the new one.
            plaintext = await self._cipher.decrypt(old["bedrock_key"], bedrock_key_context(key_id))
            carried["bedrock_key"] = await self._cipher.encrypt(plaintext, bedrock_key_context(doc["_id"]))
            carried["bedrock_key_set_at"] = old.get("bedrock_key_set_at")
        if carried:
            doc = await self.keys.update(doc["_id"], carried) or doc
        await self.keys.expire_after(key_id, self._rotate_grace_s)
        self._resolver.forget(old["key_hash"])
        await self.audit.write(actor=actor.username, ip=actor.ip, action="key.rotate", target_type="access_key",
                               target_id=key_id, details={"new_key_id": doc["_id"], "prefix": doc["prefix"],
                                                          "grace_s": self._rotate_grace_s})
        return IssuedKey(key=key, doc=doc)

    async def revoke_key(self, actor: Actor, key_id: str) -> AccessKeyDoc:
        doc = await self.keys.revoke(key_id)
        if doc is None:
            raise NotFound(f"access key {key_id!r} not found")
        self._resolver.forget(doc["key_hash"])
        await self.audit.write(actor=actor.username, ip=actor.ip, action="key.revoke",
                               target_type="access_key", target_id=key_id, details={"prefix": doc["prefix"]})
        return doc

    async def set_key_policy(self, actor: Actor, key_id: str, fallback_policy: str | None) -> AccessKeyDoc:
        _check_policy(fallback_policy)
        doc = await self.keys.update(key_id, {"fallback_policy": fallback_policy})
        if doc is None:
            raise NotFound(f"access key {key_id!r} not found")
        self._resolver.forget(doc["key_hash"])
        await self.audit.write(actor=actor.username, ip=actor.ip, action="key.policy", target_type="access_key",
                               target_id=key_id, details={"fallback_policy": fallback_policy})
        return doc

    async def set_bedrock_key(self, actor: Actor, key_id: str, api_key: str) -> AccessKeyDoc:
        """Register (or replace) the Amazon Bedrock API key this access key's fallbacks use, as a
        bearer token instead of the default AWS credential chain. Stored envelope-encrypted
        (app/crypto/envelope.py), bound to ``key_id``; never returned. Raises InvalidRequest (400)
        for an empty or oversized key, NotFound (404)."""
        api_key = api_key.strip()
        if not api_key or len(api_key) > BEDROCK_KEY_MAX_CHARS or any(c.isspace() for c in api_key):
            raise InvalidRequest("bedrock api_key: must be a non-empty token without spaces "
                                 f"(at most {BEDROCK_KEY_MAX_CHARS} characters)")
        if self._cipher is None:
            raise InvalidRequest("this proxy has no cipher configured for Bedrock API keys")
        current = await self.get_key(key_id)
        envelope = await self._cipher.encrypt(api_key.encode(), bedrock_key_context(key_id))
        doc = await self.keys.update(key_id, {"bedrock_key": envelope, "bedrock_key_set_at": datetime.now(UTC)})
        if doc is None:
            raise NotFound(f"access key {key_id!r} not found")
        self._bedrock_key_changed(doc)
        await self.audit.write(actor=actor.username, ip=actor.ip, action="key.bedrock_key.set",
                               target_type="access_key", target_id=key_id,
                               details={"replaced": bool(current.get("bedrock_key")), "kek": envelope["kek"]})
        return doc

    async def clear_bedrock_key(self, actor: Actor, key_id: str) -> AccessKeyDoc:
        """Remove the registered Bedrock API key (fallbacks use the default AWS chain again)."""
        await self.get_key(key_id)
        doc = await self.keys.unset(key_id, "bedrock_key", "bedrock_key_set_at")
        if doc is None:
            raise NotFound(f"access key {key_id!r} not found")
        self._bedrock_key_changed(doc)
        await self.audit.write(actor=actor.username, ip=actor.ip, action="key.bedrock_key.delete",
                               target_type="access_key", target_id=key_id, details={})
        return doc

    def _bedrock_key_changed(self, doc: AccessKeyDoc) -> None:
        self._resolver.forget(doc["key_hash"])
        self._on_bedrock_key_change(doc["_id"])

    async def set_limits(self, actor: Actor, target_type: str, target_id: str,
                         patch: dict[str, Any] | None) -> dict[str, Any]:
        """Merge ``patch`` into a user's or access key's ``limits`` (``target_type`` "user" |
        "access_key"; see app/usage/limits.py merge_limits: null clears). This replica forgets the
        cached keys at once; others within ``key_cache_ttl_s``. Returns the updated document.
        Raises InvalidRequest (400) for bad limits, NotFound (404)."""
        if target_type == "user":
            current = await self.get_user(target_id)
            limits = merge_limits(current.get("limits"), patch)
            doc = await self.users.update(target_id, {"limits": limits})
            if doc is None:
                raise NotFound(f"user {target_id!r} not found")
            for key in await self.keys.list_for_user(target_id, limit=100_000):
                self._resolver.forget(key["key_hash"])
        elif target_type == "access_key":
            current = await self.get_key(target_id)
            limits = merge_limits(current.get("limits"), patch)
            doc = await self.keys.update(target_id, {"limits": limits})
            if doc is None:
                raise NotFound(f"access key {target_id!r} not found")
            self._resolver.forget(doc["key_hash"])
        else:
            raise ValueError(f"unknown target_type {target_type!r}")
        action = "user.limits" if target_type == "user" else "key.limits"
        await self.audit.write(actor=actor.username, ip=actor.ip, action=action,
                               target_type=target_type, target_id=target_id,
                               details={"patch": patch, "limits": limits})
        return doc


def _check_policy(policy: str | None) -> None:
    if policy is not None and policy not in FALLBACK_POLICIES:
        raise InvalidRequest(f"fallback_policy: must be one of {', '.join(FALLBACK_POLICIES)}")


def public_key(doc: AccessKeyDoc) -> dict[str, Any]:
    """An access key as the API shows it: never the hash, never the encrypted Bedrock key."""
    return {"id": doc["_id"], "user_id": doc["user_id"], "prefix": doc.get("prefix"), "name": doc.get("name"),
            "status": doc.get("status"), "created_at": doc.get("created_at"),
            "last_used_at": doc.get("last_used_at"), "expires_at": doc.get("expires_at"),
            "state": key_state(doc), "rotated_at": doc.get("rotated_at"),
            "fallback_policy": doc.get("fallback_policy"), "limits": doc.get("limits") or {},
            "has_bedrock_key": bool(doc.get("bedrock_key")), "bedrock_key_set_at": doc.get("bedrock_key_set_at")}


def public_user(doc: UserDoc) -> dict[str, Any]:
    return {"id": doc["_id"], "name": doc.get("name"), "email": doc.get("email"), "status": doc.get("status"),
            "created_at": doc.get("created_at"), "limits": doc.get("limits") or {},
            "groups": doc.get("groups") or [], "idp_groups": doc.get("idp_groups") or []}
