"""The admin account: argon2id password hash at rest, signed bearer tokens, slowed-down failures.

Tokens are ``itsdangerous`` URL-safe timed signatures over ``{"sub": username}`` with
``PROXY_SECRET_KEY``; they expire after ``admin_token_ttl_s`` seconds.
"""

from __future__ import annotations

import asyncio
import hmac
from datetime import UTC, datetime
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from limits import RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter

from app.errors import AuthenticationFailed, RateLimited

TOKEN_SALT = "admin-token"
FAILURES_PER_MINUTE = 5
FAILURE_DELAY_S = 0.5  # every failed attempt waits this long before answering


class AdminAuth:
    """Verifies the admin login and issues/validates bearer tokens.

    Failed logins: each waits ``FAILURE_DELAY_S``; more than ``FAILURES_PER_MINUTE`` per
    (username, client IP) in a moving minute get 429 ``rate_limit_error`` with ``retry-after``.
    """

    def __init__(self, db: Any, username: str, secret_key: bytes, *, token_ttl_s: int) -> None:
        self._admins = db["admins"]
        self.username = username
        self._hasher = PasswordHasher()
        self._serializer = URLSafeTimedSerializer(secret_key, salt=TOKEN_SALT)
        self.token_ttl_s = token_ttl_s
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._limit = RateLimitItemPerMinute(FAILURES_PER_MINUTE)

    async def ensure_account(self, password: str) -> None:
        """Store the argon2id hash of the configured password (rehash only if it changed)."""
        doc = await self._admins.find_one({"username": self.username})
        if doc is not None and await asyncio.to_thread(self._verify, doc.get("password_hash", ""), password):
            return
        password_hash = await asyncio.to_thread(self._hasher.hash, password)
        await self._admins.update_one(
            {"username": self.username},
            {"$set": {"password_hash": password_hash, "updated_at": datetime.now(UTC)}},
            upsert=True)

    async def login(self, username: str, password: str, client_ip: str) -> str:
        """Returns a bearer token; raises AuthenticationFailed or RateLimited."""
        bucket = (username[:64], client_ip)
        if not await self._limiter.test(self._limit, *bucket):
            stats = await self._limiter.get_window_stats(self._limit, *bucket)
            retry = max(1.0, stats.reset_time - datetime.now(UTC).timestamp())
            raise RateLimited("too many failed logins; try again later", retry_after_s=retry)
        doc = await self._admins.find_one({"username": self.username})
        name_ok = hmac.compare_digest(username.encode(), self.username.encode())
        # argon2 costs tens of ms of CPU: keep it off the event loop.
        hash_ok = doc is not None and await asyncio.to_thread(
            self._verify, doc.get("password_hash", ""), password)
        if not (name_ok and hash_ok):
            await self._limiter.hit(self._limit, *bucket)
            await asyncio.sleep(FAILURE_DELAY_S)
            raise AuthenticationFailed("invalid username or password")
        return self.issue_token(self.username)

    def issue_token(self, username: str) -> str:
        return self._serializer.dumps({"sub": username})

    def verify_token(self, token: str) -> str:
        """Returns the username; raises AuthenticationFailed for a bad or expired token."""
        try:
            data = self._serializer.loads(token, max_age=self.token_ttl_s)
        except SignatureExpired:
            raise AuthenticationFailed("admin token expired; log in again") from None
        except BadSignature:
            raise AuthenticationFailed("invalid admin token") from None
        if data.get("sub") != self.username:
            raise AuthenticationFailed("invalid admin token")
        return data["sub"]

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False
