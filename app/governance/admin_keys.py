"""Admin API keys for automation: ``x-api-key: sk-ccp-admin01-...`` on ``/admin/*`` and
``/v1/organizations/*``, besides the admin bearer token and the dashboard login.

Two access levels: ``read_only`` (GET / HEAD only; anything else is 403 ``permission_error``)
and ``read_write``. Only HMAC-SHA256(secret key, key) and a display prefix are stored
(app/store/admin_api_keys.py), as for access keys. Each key has an id (``adk_...``) that the audit
log shows as the actor (``admin_api_key:adk_...``). Verified keys are cached ``cache_ttl_s``
(30 s); a revocation drops the key on this replica at once, on others within the TTL.
Every failure is the same 401 ``authentication_error`` (no hint whether a key exists).
"""

from __future__ import annotations

import asyncio
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cachetools import TTLCache

from app.admin.service import Actor
from app.auth.keys import hash_access_key
from app.errors import AuthenticationFailed, InvalidRequest, NotFound, PermissionDenied
from app.governance.periods import iso_z
from app.governance.spend import Page, check_cursor, page_limit
from app.store.admin_api_keys import AdminApiKeyDoc, AdminApiKeyRepository
from app.store.audit import AuditRepository

ADMIN_KEY_PREFIX = "sk-ccp-admin01-"
ACCESS_LEVELS = ("read_only", "read_write")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_KEY_RE = re.compile(r"^sk-ccp-admin01-[A-Za-z0-9_-]{40,64}$")
INVALID = "invalid admin API key"

_MISSING: Any = object()  # not cached (a cached None means "no such active key")


@dataclass(frozen=True, slots=True)
class AdminKeyIdentity:
    key_id: str
    name: str
    access: str

    @property
    def actor_name(self) -> str:
        return f"admin_api_key:{self.key_id}"


def public_admin_key(doc: AdminApiKeyDoc) -> dict[str, Any]:
    return {"type": "admin_api_key", "id": doc["_id"], "name": doc.get("name"), "access": doc.get("access"),
            "partial_key_hint": doc.get("prefix"), "status": doc.get("status"),
            "created_at": iso_z(doc["created_at"]), "created_by": doc.get("created_by"),
            "last_used_at": iso_z(doc["last_used_at"]) if doc.get("last_used_at") else None,
            "revoked_at": iso_z(doc["revoked_at"]) if doc.get("revoked_at") else None}


class AdminApiKeys:
    def __init__(self, repo: AdminApiKeyRepository, audit: AuditRepository, secret_key: bytes, *,
                 cache_ttl_s: float = 30.0) -> None:
        self.repo, self._audit, self._secret = repo, audit, secret_key
        self._cache: TTLCache[str, AdminKeyIdentity | None] = TTLCache(maxsize=1000, ttl=cache_ttl_s)
        self._touched: TTLCache[str, bool] = TTLCache(maxsize=1000, ttl=60)
        self._background: set[asyncio.Task[None]] = set()

    async def create(self, actor: Actor, name: str, access: str) -> tuple[str, AdminApiKeyDoc]:
        """-> (plaintext key, shown once; the stored document). Raises InvalidRequest."""
        name = (name or "").strip()
        if not 1 <= len(name) <= 200:
            raise InvalidRequest("name: must be 1-200 characters")
        if access not in ACCESS_LEVELS:
            raise InvalidRequest(f"access: must be one of {', '.join(ACCESS_LEVELS)}")
        key = ADMIN_KEY_PREFIX + secrets.token_urlsafe(32)
        doc = await self.repo.create(name=name, key_hash=hash_access_key(self._secret, key),
                                     prefix=key[:len(ADMIN_KEY_PREFIX) + 4], access=access, created_by=actor.username)
        await self._audit.write(actor=actor.username, ip=actor.ip, action="admin_api_key.create",
                                target_type="admin_api_key", target_id=doc["_id"], details={"name": name, "access": access})
        return key, doc

    async def list(self, *, limit: int | None = None, after_id: str | None = None,
                   before_id: str | None = None) -> Page:
        check_cursor(after_id, before_id)
        docs, has_more = await self.repo.page(limit=page_limit(limit), after_id=after_id, before_id=before_id)
        return Page([public_admin_key(d) for d in docs], has_more)

    async def revoke(self, actor: Actor, key_id: str) -> AdminApiKeyDoc:
        doc = await self.repo.revoke(key_id)
        if doc is None:
            raise NotFound(f"admin API key {key_id!r} not found")
        self._cache.pop(doc["key_hash"], None)
        await self._audit.write(actor=actor.username, ip=actor.ip, action="admin_api_key.revoke",
                                target_type="admin_api_key", target_id=key_id, details={"name": doc.get("name")})
        return doc

    async def authenticate(self, key: str, method: str) -> AdminKeyIdentity:
        """The key's identity, or AuthenticationFailed (401); PermissionDenied (403) when a
        read-only key is used for ``method`` other than GET/HEAD/OPTIONS."""
        key_hash = hash_access_key(self._secret, key or "")
        if not _KEY_RE.fullmatch(key or ""):
            raise AuthenticationFailed(INVALID)
        identity = self._cache.get(key_hash, _MISSING)  # one lookup: an entry can expire between `in` and `[]`
        if identity is _MISSING:
            doc = await self.repo.find_by_hash(key_hash)
            identity = (AdminKeyIdentity(doc["_id"], doc.get("name") or "", doc.get("access") or "read_only")
                        if doc is not None and doc.get("status") == "active" else None)
            self._cache[key_hash] = identity
        if identity is None:
            raise AuthenticationFailed(INVALID)
        if identity.access != "read_write" and method.upper() not in SAFE_METHODS:
            raise PermissionDenied(f"admin API key {identity.key_id} is read-only; this request needs a "
                                   "read_write key")
        self._touch(identity.key_id)
        return identity

    def _touch(self, key_id: str) -> None:
        if key_id in self._touched:
            return
        self._touched[key_id] = True

        async def touch() -> None:
            try:
                await self.repo.touch_last_used(key_id, datetime.now(UTC))
            except Exception:  # noqa: BLE001 - last_used_at is best effort
                pass
        task = asyncio.get_running_loop().create_task(touch())
        self._background.add(task)
        task.add_done_callback(self._background.discard)
