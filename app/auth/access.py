"""Resolve an access key to its principal, with a short in-process cache.

The same work is done for every key, known or not (HMAC, one indexed lookup or one cache hit), and
every failure raises the same :class:`AuthenticationFailed`, so answers and timing do not tell
whether a key exists. Entries live at most ``key_cache_ttl_s`` (≤ 30 s) and are dropped at once on
this replica when a key is rotated or revoked; other replicas see the change within the TTL.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cachetools import TTLCache

from app.auth.keys import hash_access_key, is_well_formed
from app.errors import AuthenticationFailed
from app.store.access_keys import AccessKeyRepository
from app.store.users import UserRepository

log = logging.getLogger(__name__)

INVALID_KEY_MESSAGE = "invalid proxy access key"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request belongs to: the access key's id and its user's, plus per-key policy."""

    access_key_id: str
    user_id: str
    key_prefix: str
    fallback_policy: str | None = None
    key_limits: dict[str, Any] = field(default_factory=dict)
    user_limits: dict[str, Any] = field(default_factory=dict)
    has_bedrock_key: bool = False


class AccessKeyResolver:
    """``await resolve(key) -> Principal``; raises ``AuthenticationFailed`` for any bad key."""

    def __init__(self, keys: AccessKeyRepository, users: UserRepository, secret_key: bytes, *,
                 cache_ttl_s: float = 30.0, last_used_interval_s: float = 60.0,
                 cache_size: int = 10_000) -> None:
        self._keys, self._users, self._secret = keys, users, secret_key
        self._cache: TTLCache[str, tuple[Principal | None, datetime | None]] = TTLCache(
            maxsize=cache_size, ttl=cache_ttl_s) if cache_ttl_s > 0 else TTLCache(maxsize=1, ttl=1e-9)
        self._last_used_written: TTLCache[str, float] = TTLCache(maxsize=cache_size, ttl=3600)
        self._last_used_interval_s = last_used_interval_s
        self._background: set[asyncio.Task[None]] = set()

    async def resolve(self, key: str | None) -> Principal:
        if not key or not is_well_formed(key):
            # Still hash, so a malformed key costs what a well-formed one does.
            hash_access_key(self._secret, key or "")
            raise AuthenticationFailed(INVALID_KEY_MESSAGE)
        key_hash = hash_access_key(self._secret, key)
        cached = self._cache.get(key_hash)
        if cached is None:
            cached = await self._load(key_hash)
            self._cache[key_hash] = cached
        principal, expires_at = cached
        if principal is None or (expires_at is not None and expires_at <= datetime.now(UTC)):
            raise AuthenticationFailed(INVALID_KEY_MESSAGE)
        self._maybe_touch(principal.access_key_id)
        return principal

    def forget(self, key_hash: str) -> None:
        """Drop a cached key (after rotate/revoke/policy change)."""
        self._cache.pop(key_hash, None)

    async def _load(self, key_hash: str) -> tuple[Principal | None, datetime | None]:
        doc = await self._keys.find_by_hash(key_hash)
        if doc is None or doc.get("status") != "active":
            return None, None
        user = await self._users.get(doc["user_id"])
        if user is None or user.get("status") != "active":
            return None, None
        principal = Principal(
            access_key_id=doc["_id"], user_id=doc["user_id"], key_prefix=doc.get("prefix", ""),
            fallback_policy=doc.get("fallback_policy"), key_limits=doc.get("limits") or {},
            user_limits=user.get("limits") or {}, has_bedrock_key=bool(doc.get("bedrock_key")))
        expires_at = doc.get("expires_at")
        if expires_at is not None and expires_at.tzinfo is None:
            expires_at = expires_at.replace(tzinfo=UTC)
        return principal, expires_at

    def _maybe_touch(self, key_id: str) -> None:
        """Write ``last_used_at`` at most once per interval per key, off the request path."""
        now = time.monotonic()
        last = self._last_used_written.get(key_id)
        if last is not None and now - last < self._last_used_interval_s:
            return
        self._last_used_written[key_id] = now
        task = asyncio.get_running_loop().create_task(self._touch(key_id))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _touch(self, key_id: str) -> None:
        try:
            await self._keys.touch_last_used(key_id, datetime.now(UTC))
        except Exception as exc:  # noqa: BLE001 - last_used_at is best effort
            log.warning("last_used_at write failed: %s", type(exc).__name__)
