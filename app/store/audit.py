"""The audit log of admin actions (collection ``audit_log``): who, when, what, from which IP.

Entries are written by AdminService (users, keys, limits), the model-map admin and the login
routes (``admin.login``, ``admin.logout``, and ``admin.login_failed`` for a refused password, with
the username as typed cut to ``LOGIN_NAME_MAX_CHARS`` and never the password). Read with
:meth:`AuditRepository.find` (filters, newest first), shared by ``GET /admin/audit`` and ``/ui/audit``.
"""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo import DESCENDING, IndexModel

from app.store.mongo import STORE_ERRORS, describe_store_error

log = logging.getLogger(__name__)

AuditDoc = dict[str, Any]
"""``{"_id", "time", "actor", "action", "target_type", "target_id", "details": {...}, "ip"}``"""

LOGIN_NAME_MAX_CHARS = 64  # a failed login's username is attacker-chosen text: keep it short
FAILED_LOGIN = "admin.login_failed"
INDEXES = {"audit_log": [IndexModel([("time", DESCENDING)], name="time"),
                         IndexModel([("action", 1), ("time", DESCENDING)], name="action_time")]}


@dataclass(frozen=True)
class AuditFilter:
    """What to list: each set field must match. ``actor`` and ``action`` match exactly, or as a
    prefix when they end with ``*`` (``key.*``); ``target`` is a target id (``usr_...``,
    ``ak_...``) or a model name; ``since``/``until`` bound ``time`` (``[since, until)``, aware)."""

    actor: str | None = None
    action: str | None = None
    target: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def query(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for field, value in (("actor", self.actor), ("action", self.action), ("target_id", self.target)):
            if not value:
                continue
            if field != "target_id" and value.endswith("*"):
                out[field] = {"$regex": "^" + re.escape(value[:-1])}
            else:
                out[field] = value
        window: dict[str, datetime] = {}
        if self.since is not None:
            window["$gte"] = self.since
        if self.until is not None:
            window["$lt"] = self.until
        if window:
            out["time"] = window
        return out


class AuditRepository:
    def __init__(self, db: Any) -> None:
        self._audit = db["audit_log"]

    async def write(self, *, actor: str, action: str, ip: str | None, target_type: str | None = None,
                    target_id: str | None = None, details: dict[str, Any] | None = None) -> AuditDoc:
        """Append one entry. ``details`` must never hold a secret (keys, passwords, tokens)."""
        doc: AuditDoc = {"_id": "aud_" + uuid.uuid4().hex[:20], "time": datetime.now(UTC),
                         "actor": actor, "action": action, "target_type": target_type,
                         "target_id": target_id, "details": details or {}, "ip": ip}
        await self._audit.insert_one(doc)
        return doc

    async def write_failed_login(self, *, username: str, ip: str | None, via: str) -> None:
        """``admin.login_failed``: the username as typed (cut to LOGIN_NAME_MAX_CHARS, marked
        ``truncated``), the client IP, ``via`` ("ui" | "api"); never the password. A store failure
        is logged, not raised: the client still gets its 401."""
        name = username[:LOGIN_NAME_MAX_CHARS]
        details: dict[str, Any] = {"via": via}
        if len(username) > LOGIN_NAME_MAX_CHARS:
            details["truncated"] = True
        try:
            await self.write(actor=name, ip=ip, action=FAILED_LOGIN, details=details)
        except STORE_ERRORS as exc:
            log.warning("audit: could not record a failed admin login (%s)", describe_store_error(exc))

    async def find(self, where: AuditFilter | None = None, *, limit: int = 100, skip: int = 0) -> list[AuditDoc]:
        """Entries matching ``where``, newest first (one round trip)."""
        query = (where or AuditFilter()).query()
        cursor = self._audit.find(query).sort([("time", -1), ("_id", -1)]).skip(skip).limit(limit)
        return await cursor.to_list(length=limit)

    async def list(self, *, limit: int = 100, skip: int = 0, action: str | None = None) -> list[AuditDoc]:
        return await self.find(AuditFilter(action=action), limit=limit, skip=skip)
