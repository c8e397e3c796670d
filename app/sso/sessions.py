"""SSO sessions: server-side and revocable, in the admin sessions collection (app/store/identities.py).

A sign-in creates one session for the person, used by both cookies it sets (``ccp_session`` for
``/ui`` when the person is an admin, ``ccp_me`` for ``/me``): logging out of either deletes it.
:meth:`SsoSessions.check` accepts a session while its document exists, it was used within
``idle_timeout_s`` (each use slides ``expires_at``; the store is written at most once per
``TOUCH_INTERVAL_S``), it is younger than ``absolute_ttl_s``, and its user is still ``active`` (an
admin disabling a user in the proxy ends their sessions at the next request). Two store calls per
check, uncached, so a logout or a disabled user takes effect at once on every replica.
Errors: ServiceUnavailable (503) when the store fails.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from app.errors import ServiceUnavailable
from app.sso.identity import Identity
from app.store.identities import SsoSessionRepository
from app.store.mongo import STORE_ERRORS, describe_store_error
from app.store.users import UserRepository

log = logging.getLogger(__name__)

TOUCH_INTERVAL_S = 60.0
STORE_DOWN = "sign-in is unavailable right now (the proxy's database is unreachable); retry shortly"


@dataclass(frozen=True)
class SsoSession:
    session_id: str
    actor: str  # "oidc:<sub> (<email>)"
    user_id: str
    admin: bool


def _aware(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


class SsoSessions:
    def __init__(self, repo: SsoSessionRepository, users: UserRepository, *, idle_timeout_s: int,
                 absolute_ttl_s: int, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._repo, self._users = repo, users
        self.idle_timeout_s, self.absolute_ttl_s, self._now = idle_timeout_s, absolute_ttl_s, now

    async def start(self, identity: Identity, user_id: str, *, admin: bool) -> SsoSession:
        session_id = secrets.token_urlsafe(18)
        now = self._now()
        absolute = now + timedelta(seconds=self.absolute_ttl_s)
        try:
            await self._repo.create(session_id, actor=identity.actor, user_id=user_id, admin=admin,
                                    expires_at=min(absolute, now + timedelta(seconds=self.idle_timeout_s)),
                                    absolute_expires_at=absolute)
        except STORE_ERRORS as exc:
            raise store_down(exc) from None
        return SsoSession(session_id=session_id, actor=identity.actor, user_id=user_id, admin=admin)

    async def check(self, session_id: str | None) -> SsoSession | None:
        """The live session, or None (unknown, logged out, idle too long, too old, user disabled)."""
        if not session_id:
            return None
        try:
            doc = await self._repo.get(session_id)
            if doc is None:
                return None
            now = self._now()
            last_seen, absolute = _aware(doc.get("last_seen_at")), _aware(doc.get("absolute_expires_at"))
            if (last_seen is None or now - last_seen > timedelta(seconds=self.idle_timeout_s)
                    or absolute is None or now >= absolute):
                await self._repo.delete(session_id)
                return None
            user = await self._users.get(doc["user_id"])
            if user is None or user.get("status") != "active":
                await self._repo.delete(session_id)
                return None
            if now - last_seen >= timedelta(seconds=TOUCH_INTERVAL_S):
                await self._repo.touch(session_id, last_seen_at=now,
                                       expires_at=min(absolute, now + timedelta(seconds=self.idle_timeout_s)))
        except STORE_ERRORS as exc:
            raise store_down(exc) from None
        return SsoSession(session_id=session_id, actor=doc["username"], user_id=doc["user_id"],
                          admin=bool(doc.get("admin")))

    async def end(self, session_id: str) -> None:
        try:
            await self._repo.delete(session_id)
        except STORE_ERRORS as exc:
            raise store_down(exc) from None


def store_down(exc: BaseException) -> ServiceUnavailable:
    log.warning("sso sessions: store failed (%s)", describe_store_error(exc))
    return ServiceUnavailable(STORE_DOWN, retry_after_s=5.0)
