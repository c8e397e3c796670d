"""The admin account: argon2id password hash at rest, revocable sessions, counted and capped logins.

Sessions: each login creates a session document (app/store/admins.py) with a random id, the
``jti``. Bearer tokens are ``itsdangerous`` URL-safe timed signatures over ``{"sub", "jti"}`` with
``PROXY_SECRET_KEY`` (salt ``admin-token``); dashboard cookies carry the id as ``sid``
(app/ui/session.py). A token or cookie is accepted while its signature is younger than
``admin_token_ttl_s`` *and* its session document exists: logout deletes it (``POST
/admin/auth/logout``, ``/ui/logout``); a changed admin password deletes them all. The answer of
that check is cached in process for ``SESSION_CACHE_TTL_S`` (1 s), so a dashboard request costs at
most one store call for it; a logout on this replica drops its entry at once, other replicas stop
accepting the token within that second.

Logins: before the password is looked at, the attempt is counted atomically in the store, per
username and per client IP, in fixed one-minute windows shared by every replica; an attempt beyond
``FAILURES_PER_MINUTE`` in either gets 429 ``rate_limit_error`` with ``retry-after`` (the window's
end), even with the right password. A successful login gives its count back. At most
``hash_concurrency`` argon2 computations run at once per process (each takes ~64 MiB and tens of
ms of CPU); failures wait ``FAILURE_DELAY_S`` before answering. A store failure gives 503.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cachetools import TTLCache
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from app.errors import AuthenticationFailed, RateLimited, ServiceUnavailable
from app.store.admins import AdminRepository, AdminSessionRepository, LoginAttemptRepository
from app.store.mongo import STORE_ERRORS, describe_store_error

log = logging.getLogger(__name__)

TOKEN_SALT = "admin-token"
FAILURES_PER_MINUTE = 5  # per username and per client IP
WINDOW_S = 60
FAILURE_DELAY_S = 0.5  # every failed attempt waits this long before answering
HASH_CONCURRENCY = 2  # argon2 computations at once per process
SESSION_CACHE_TTL_S = 1.0
STORE_RETRY_AFTER_S = 5.0
STORE_DOWN_MESSAGE = "admin sign-in is unavailable right now (the proxy's database is unreachable); retry shortly"


@dataclass(frozen=True)
class AdminLogin:
    """A new session: its id (``jti``/``sid``) and the bearer token that carries it."""

    session_id: str
    token: str


@dataclass(frozen=True)
class AdminIdentity:
    username: str
    session_id: str


class AdminAuth:
    """Verifies the admin login; issues, checks and revokes sessions.

    Counters for ``/metrics`` (app/auth/metrics.py): ``logins_ok``, ``logins_failed`` (password
    checked and wrong), ``logins_refused`` (429 before any check)."""

    def __init__(self, admins: AdminRepository, sessions: AdminSessionRepository,
                 attempts: LoginAttemptRepository, username: str, secret_key: bytes, *, token_ttl_s: int,
                 hash_concurrency: int = HASH_CONCURRENCY, failures_per_minute: int = FAILURES_PER_MINUTE,
                 clock: Callable[[], float] = time.time) -> None:
        self._admins, self._sessions, self._attempts = admins, sessions, attempts
        self.username = username
        self._hasher = PasswordHasher()
        self._serializer = URLSafeTimedSerializer(secret_key, salt=TOKEN_SALT)
        self.token_ttl_s = token_ttl_s
        self._hash_slots = asyncio.Semaphore(hash_concurrency)
        self._limit = failures_per_minute
        self.clock = clock
        self._session_cache: TTLCache[str, bool] = TTLCache(maxsize=4096, ttl=SESSION_CACHE_TTL_S)
        self.logins_ok = self.logins_failed = self.logins_refused = 0
        # False when single sign-on replaces the password (PROXY_OIDC_LOCAL_ADMIN_ENABLED=false, app/sso).
        self.password_login_enabled = True

    async def ensure_account(self, password: str) -> None:
        """Store the argon2id hash of the configured password. When it changed (or is new), every
        existing session and token is revoked."""
        stored = await self._admins.password_hash(self.username)
        if stored is not None and await self._verify(stored, password):
            return
        await self._admins.set_password_hash(self.username, await self._hash(password))
        revoked = await self._sessions.delete_all(self.username)
        self._session_cache.clear()
        if stored is not None:
            log.warning("admin password changed: %d session(s) and token(s) revoked", revoked)

    async def login(self, username: str, password: str, client_ip: str, *, kind: str = "token") -> AdminLogin:
        """A new session; raises RateLimited (before any check), AuthenticationFailed, ServiceUnavailable."""
        if not self.password_login_enabled:
            raise AuthenticationFailed("the local admin account is disabled (PROXY_OIDC_LOCAL_ADMIN_ENABLED=false); "
                                       "sign in with single sign-on")
        now = self.clock()
        window = int(now // WINDOW_S)
        expires_at = datetime.fromtimestamp((window + 2) * WINDOW_S, UTC)
        scopes = (("user", username[:256]), ("ip", client_ip))
        try:
            counts = await asyncio.gather(*(self._attempts.hit(scope, ident, window_start=window * WINDOW_S,
                                                               expires_at=expires_at) for scope, ident in scopes))
        except STORE_ERRORS as exc:
            raise self._store_down(exc) from None
        if max(counts) > self._limit:
            self.logins_refused += 1
            raise RateLimited("too many login attempts; try again later",
                              retry_after_s=(window + 1) * WINDOW_S - now)
        try:
            stored = await self._admins.password_hash(self.username)
        except STORE_ERRORS as exc:
            raise self._store_down(exc) from None
        name_ok = hmac.compare_digest(username.encode(), self.username.encode())
        # The hash is checked even for a wrong username, so timing does not tell which part was wrong.
        hash_ok = await self._verify(stored or "", password)
        if not (name_ok and hash_ok and stored):
            self.logins_failed += 1
            await asyncio.sleep(FAILURE_DELAY_S)
            raise AuthenticationFailed("invalid username or password")
        self.logins_ok += 1
        try:
            await asyncio.gather(*(self._attempts.refund(scope, ident, window_start=window * WINDOW_S)
                                   for scope, ident in scopes))
            return await self._start_session(kind)
        except STORE_ERRORS as exc:
            raise self._store_down(exc) from None

    async def _start_session(self, kind: str) -> AdminLogin:
        session_id = secrets.token_urlsafe(18)
        expires_at = datetime.now(UTC) + timedelta(seconds=self.token_ttl_s)
        await self._sessions.create(session_id, username=self.username, kind=kind, expires_at=expires_at)
        return AdminLogin(session_id=session_id,
                          token=self._serializer.dumps({"sub": self.username, "jti": session_id}))

    async def verify_token(self, token: str) -> AdminIdentity:
        """The token's admin and session; raises AuthenticationFailed for a bad, expired or revoked
        token, ServiceUnavailable when the store cannot say."""
        try:
            data = self._serializer.loads(token, max_age=self.token_ttl_s)
        except SignatureExpired:
            raise AuthenticationFailed("admin token expired; log in again") from None
        except BadSignature:
            raise AuthenticationFailed("invalid admin token") from None
        if not isinstance(data, dict) or data.get("sub") != self.username or not isinstance(data.get("jti"), str):
            raise AuthenticationFailed("invalid admin token")
        if not await self.session_active(data["jti"]):
            raise AuthenticationFailed("admin token revoked; log in again")
        return AdminIdentity(username=self.username, session_id=data["jti"])

    async def session_active(self, session_id: str) -> bool:
        """True while the session exists (not logged out, not revoked by a password change) and has
        not expired. Cached ``SESSION_CACHE_TTL_S``. Raises ServiceUnavailable when the store fails."""
        cached = self._session_cache.get(session_id)
        if cached is not None:
            return cached
        try:
            doc = await self._sessions.get(session_id)
        except STORE_ERRORS as exc:
            raise self._store_down(exc) from None
        expires_at = doc.get("expires_at") if doc else None
        if expires_at is not None and expires_at.tzinfo is None:
            expires_at = expires_at.replace(tzinfo=UTC)
        active = bool(doc and doc.get("username") == self.username
                      and (expires_at is None or expires_at > datetime.now(UTC)))
        self._session_cache[session_id] = active
        return active

    async def logout(self, session_id: str) -> None:
        """Revoke one session (token or cookie) now."""
        self._session_cache.pop(session_id, None)
        try:
            await self._sessions.delete(session_id)
        except STORE_ERRORS as exc:
            raise self._store_down(exc) from None
        self._session_cache[session_id] = False

    async def logout_everywhere(self) -> int:
        """Revoke every session and token of the admin; returns how many."""
        try:
            revoked = await self._sessions.delete_all(self.username)
        except STORE_ERRORS as exc:
            raise self._store_down(exc) from None
        self._session_cache.clear()
        return revoked

    def _store_down(self, exc: BaseException) -> ServiceUnavailable:
        log.warning("admin auth: store failed (%s)", describe_store_error(exc))
        return ServiceUnavailable(STORE_DOWN_MESSAGE, retry_after_s=STORE_RETRY_AFTER_S)

    async def _hash(self, password: str) -> str:
        async with self._hash_slots:
            return await asyncio.to_thread(self._hasher.hash, password)

    async def _verify(self, password_hash: str, password: str) -> bool:
        """argon2 off the event loop, at most ``hash_concurrency`` at once in this process."""
        async with self._hash_slots:
            return await asyncio.to_thread(self._verify_sync, password_hash, password)

    def _verify_sync(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False
