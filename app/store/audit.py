"""The audit log of admin actions (collection ``audit_log``): who, when, what, from which IP."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

AuditDoc = dict[str, Any]
"""``{"_id", "time", "actor", "action", "target_type", "target_id", "details": {...}, "ip"}``"""


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

    async def list(self, *, limit: int = 100, skip: int = 0, action: str | None = None) -> list[AuditDoc]:
        query = {"action": action} if action else {}
        cursor = self._audit.find(query).sort("time", -1).skip(skip).limit(limit)
        return await cursor.to_list(length=limit)
