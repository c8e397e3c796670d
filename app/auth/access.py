"""Resolve an access key to its principal, with a short in-process cache and a store-outage fallback.

The same work is done for every key, known or not (HMAC, one indexed lookup or one cache hit), and
every failure raises the same :class:`AuthenticationFailed`, so answers and timing do not tell
whether a key exists. Entries live at most ``key_cache_ttl_s`` (≤ 30 s) and are dropped at once on
this replica when a key is rotated or revoked; other replicas see the change within the TTL.

Store outage (any of ``STORE_ERRORS``, or no answer within ``lookup_timeout_s``): a key whose last
good lookup on this replica is at most ``stale_grace_s`` old (default 900 s) is answered from that
lookup, positive or negative, so a key known to be revoked or unknown stays refused and a stale
negative is never turned positive. Any other key gets :class:`ServiceUnavailable` (503
``overloaded_error``, ``retry-after``). After a failed lookup the store is not asked again for
``STORE_RETRY_INTERVAL_S`` seconds (requests meanwhile use the last good lookups at once, instead of
each waiting for the driver's timeout). Concurrent lookups of one key share one store call.
The last-good table holds at most ``cache_size`` keys (least recently used dropped first).

Limit: a revocation made on another replica reaches this one only when it looks the key up again
(≤ ``key_cache_ttl_s`` for a key in use). A key idle here since before such a revocation can be
served from its older lookup if the store fails before this replica looks it up again, for at most
``stale_grace_s`` after that lookup.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from collections.abc import Callable

from cachetools import LRUCache, TTLCache

from app.auth.keys import KEY_PREFIX, hash_access_key, is_well_formed
from app.errors import AuthenticationFailed, ServiceUnavailable
from app.store.access_keys import AccessKeyRepository
from app.store.mongo import STORE_ERRORS, describe_store_error
from app.store.users import UserRepository

log = logging.getLogger(__name__)

PROXY_KEY_HEADER = "x-proxy-key"  # app.proxy.headers.PROXY_KEY_HEADER (auth does not import proxy)
INVALID_KEY_MESSAGE = "invalid proxy access key"  # the start of every refusal below
KeySource = Literal["header", "path"]
# Where a key was looked for, as the 401 names it (app/proxy/routes.py serves both forms).
_KEY_WHERE: dict[KeySource, str] = {
    "header": f"the {PROXY_KEY_HEADER} header",
    "path": "the /ak/<key>/ path of ANTHROPIC_BASE_URL",
}
_KEY_FORMS = (f"send it as the {PROXY_KEY_HEADER} header (ANTHROPIC_CUSTOM_HEADERS=\"{PROXY_KEY_HEADER}: "
              f"{KEY_PREFIX}...\") or in the base URL (ANTHROPIC_BASE_URL=https://<proxy>/ak/{KEY_PREFIX}...)")


def key_refused_message(reason: Literal["missing", "malformed", "unknown"], where: KeySource) -> str:
    """The 401's message: which form was expected and what was wrong with the key. "unknown"
    covers unknown, revoked, expired and disabled alike, so the answer never tells whether a key
    exists. Never quotes the key."""
    if reason == "missing":
        return f"{INVALID_KEY_MESSAGE}: none was sent; {_KEY_FORMS}"
    if reason == "malformed":
        return (f"{INVALID_KEY_MESSAGE}: the value in {_KEY_WHERE[where]} is not shaped like one "
                f"({KEY_PREFIX} followed by 20-128 letters, digits, '_' or '-')")
    return (f"{INVALID_KEY_MESSAGE}: the key in {_KEY_WHERE[where]} is not accepted (unknown, revoked "
            "or expired, or its user is disabled); ask the proxy's administrator for a key")
STORE_DOWN_MESSAGE = ("the proxy cannot check access keys right now (its database is unreachable); "
                      "retry shortly")
STORE_RETRY_INTERVAL_S = 2.0  # after a failed lookup, answer from last good lookups this long
RETRY_AFTER_S = 5.0  # the `retry-after` of a 503 for a key that cannot be checked


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
    groups: tuple[str, ...] = ()  # the user's group ids (app/governance)
    allowed_models: tuple[str, ...] | None = None  # the key's model allow-list (None: no restriction)


Entry = tuple[Principal | None, datetime | None]  # (principal or None for "refuse", key expiry)


class AccessKeyResolver:
    """``await resolve(key) -> Principal``; raises ``AuthenticationFailed`` for any bad key and
    ``ServiceUnavailable`` for a key that cannot be checked (store down, no recent good lookup).

    Counters for ``/metrics`` (read by app/auth/metrics.py): ``store_failures`` (failed lookups),
    ``served_stale`` (answers from a last good lookup), ``refused_unavailable`` (503s).
    ``clock``: monotonic seconds (tests pass a fake one)."""

    def __init__(self, keys: AccessKeyRepository, users: UserRepository, secret_key: bytes, *,
                 cache_ttl_s: float = 30.0, last_used_interval_s: float = 60.0,
                 cache_size: int = 10_000, stale_grace_s: float = 900.0, lookup_timeout_s: float = 2.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._keys, self._users, self._secret = keys, users, secret_key
        self._clock = clock
        # None: no cache (key_cache_ttl_s = 0), every request looks its key up.
        self._cache: TTLCache[str, Entry] | None = TTLCache(
            maxsize=cache_size, ttl=cache_ttl_s, timer=clock) if cache_ttl_s > 0 else None
        self._last_good: LRUCache[str, tuple[Entry, float]] = LRUCache(maxsize=cache_size)
        self._stale_grace_s, self._lookup_timeout_s = stale_grace_s, lookup_timeout_s
        self._store_down_until = 0.0
        self._outage = False
        self._inflight: dict[str, asyncio.Future[Entry]] = {}
        self.store_failures = self.served_stale = self.refused_unavailable = 0
        self._last_used_written: TTLCache[str, float] = TTLCache(maxsize=cache_size, ttl=3600)
        self._last_used_interval_s = last_used_interval_s
        self._background: set[asyncio.Task[None]] = set()

    async def resolve(self, key: str | None, *, where: KeySource = "header") -> Principal:
        """The key's principal. ``where``: the form the key came in, named by the 401's message
        (:func:`key_refused_message`), which is also ``x-should-retry: false``."""
        if not key or not is_well_formed(key):
            # Still hash, so a malformed key costs what a well-formed one does.
            hash_access_key(self._secret, key or "")
            raise AuthenticationFailed(key_refused_message("missing" if not key else "malformed", where))
        key_hash = hash_access_key(self._secret, key)
        cached = self._cache.get(key_hash) if self._cache is not None else None
        if cached is None:
            cached = await self._refresh(key_hash)
        principal, expires_at = cached
        if principal is None or (expires_at is not None and expires_at <= datetime.now(UTC)):
            raise AuthenticationFailed(key_refused_message("unknown", where))
        self._maybe_touch(principal.access_key_id)
        return principal

    def forget(self, key_hash: str) -> None:
        """Drop a cached key (after rotate/revoke/policy change), including its last good lookup,
        so that a store outage right after a revocation cannot serve the key from before it."""
        if self._cache is not None:
            self._cache.pop(key_hash, None)
        self._last_good.pop(key_hash, None)

    async def _refresh(self, key_hash: str) -> Entry:
        """A fresh lookup, or the last good one while the store fails. Raises ServiceUnavailable."""
        if self._clock() < self._store_down_until:
            return self._last_good_or_refuse(key_hash)
        try:
            entry = await self._shared_load(key_hash)
        except STORE_ERRORS as exc:
            self.store_failures += 1
            self._store_down_until = self._clock() + STORE_RETRY_INTERVAL_S
            if not self._outage:
                self._outage = True
                log.warning("access-key lookups failing (%s); serving keys from their last good lookup "
                            "for up to %.0f s, others get 503", describe_store_error(exc), self._stale_grace_s)
            return self._last_good_or_refuse(key_hash)
        if self._outage:
            self._outage = False
            log.warning("access-key lookups answering again")
        if self._cache is not None:
            self._cache[key_hash] = entry
        self._last_good[key_hash] = (entry, self._clock())
        return entry

    def _last_good_or_refuse(self, key_hash: str) -> Entry:
        last = self._last_good.get(key_hash)
        if last is None or self._clock() - last[1] > self._stale_grace_s:
            self.refused_unavailable += 1
            raise ServiceUnavailable(STORE_DOWN_MESSAGE, retry_after_s=RETRY_AFTER_S)
        self.served_stale += 1
        return last[0]

    async def _shared_load(self, key_hash: str) -> Entry:
        """One store lookup per key at a time, bounded by ``lookup_timeout_s``; concurrent callers
        share it (a cancelled caller does not cancel it for the others)."""
        future = self._inflight.get(key_hash)
        if future is None:
            future = asyncio.ensure_future(self._bounded_load(key_hash))
            self._inflight[key_hash] = future
            future.add_done_callback(lambda done: self._drop_inflight(key_hash, done))
        return await asyncio.shield(future)

    async def _bounded_load(self, key_hash: str) -> Entry:
        async with asyncio.timeout(self._lookup_timeout_s):
            return await self._load(key_hash)

    def _drop_inflight(self, key_hash: str, done: asyncio.Future[Entry]) -> None:
        if self._inflight.get(key_hash) is done:
            del self._inflight[key_hash]
        if not done.cancelled():
            done.exception()  # retrieved: no "exception was never retrieved" warning if all waiters left

    async def _load(self, key_hash: str) -> Entry:
        doc = await self._keys.find_by_hash(key_hash)
        if doc is None or doc.get("status") != "active":
            return None, None
        user = await self._users.get(doc["user_id"])
        if user is None or user.get("status") != "active":
            return None, None
        principal = Principal(
            access_key_id=doc["_id"], user_id=doc["user_id"], key_prefix=doc.get("prefix", ""),
            fallback_policy=doc.get("fallback_policy"), key_limits=doc.get("limits") or {},
            user_limits=user.get("limits") or {}, has_bedrock_key=bool(doc.get("bedrock_key")),
            groups=tuple(user.get("groups") or ()),
            allowed_models=tuple(doc["allowed_models"]) if doc.get("allowed_models") is not None else None)
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
