"""Spend limits (collection ``spend_limits``) and their change history (``spend_limit_audit``).

A spend limit caps USD spend of one scope over one period (app/governance/spend.py)::

    {"_id": "spl_<hex>", "scope": {"type": "user", "user_id"} | {"type": "rbac_group", "rbac_group_id"}
                                  | {"type": "rbac_group_shared", "rbac_group_id"} | {"type": "organization"},
     "scope_key": "user:<id>" | "rbac_group:<grp id>" | "rbac_group_shared:<grp id>" | "organization",
     "period": "daily" | "weekly" | "monthly", "amount": "<whole USD cents>" | None,
     "blocked_message": str | None, "alert_thresholds": [percent, ...] | None,
     "created_at", "updated_at", "updated_by": {actor}}

``(scope_key, period)`` is unique: :meth:`put` creates or replaces the one cap of that scope and
period (an atomic upsert). An audit row per change::

    {"_id": "sla_<hex>", "time", "action": "created" | "updated" | "deleted", "spend_limit_id",
     "actor": {"type": "user_actor" | "admin_api_key_actor", ...}, "before": doc | None, "after": doc | None}

Raises pymongo errors.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, IndexModel, ReturnDocument

from app.store.ids import new_id
from app.store.paging import find_page

LIMITS, AUDIT = "spend_limits", "spend_limit_audit"
INDEXES = {LIMITS: [IndexModel([("scope_key", ASCENDING), ("period", ASCENDING)], name="scope_period_unique",
                               unique=True)],
           AUDIT: [IndexModel([("spend_limit_id", ASCENDING), ("_id", ASCENDING)], name="limit_id")]}

SpendLimitDoc = dict[str, Any]


class SpendLimitRepository:
    def __init__(self, db: Any) -> None:
        self._limits = db[LIMITS]
        self._audit = db[AUDIT]

    async def put(self, scope: dict[str, Any], scope_key: str, period: str,
                  fields: dict[str, Any]) -> tuple[SpendLimitDoc | None, SpendLimitDoc]:
        """Create or replace the cap of ``(scope_key, period)`` with ``fields`` (``amount``,
        ``blocked_message``, ``alert_thresholds``, ``updated_by``). -> (before or None, after).
        The id of an existing cap is kept."""
        now = datetime.now(UTC)
        before = await self._limits.find_one_and_update(
            {"scope_key": scope_key, "period": period},
            {"$set": {**fields, "scope": scope, "updated_at": now},
             "$setOnInsert": {"_id": new_id("spl"), "created_at": now}},
            upsert=True, return_document=ReturnDocument.BEFORE)
        after = await self._limits.find_one({"scope_key": scope_key, "period": period})
        return before, after

    async def get(self, limit_id: str) -> SpendLimitDoc | None:
        return await self._limits.find_one({"_id": limit_id})

    async def all(self) -> list[SpendLimitDoc]:
        """Every cap (the request path caches this table; caps are few)."""
        return await self._limits.find({}).to_list(length=None)

    async def page(self, *, limit: int, after_id: str | None, before_id: str | None,
                   query: dict[str, Any] | None = None) -> tuple[list[SpendLimitDoc], bool]:
        """Caps in creation order (see app/store/paging.py)."""
        return await find_page(self._limits, query or {}, limit=limit, after_id=after_id, before_id=before_id)

    async def delete(self, limit_id: str) -> SpendLimitDoc | None:
        return await self._limits.find_one_and_delete({"_id": limit_id})

    async def delete_scope(self, scope_key: str) -> list[SpendLimitDoc]:
        """Delete every cap of one scope (a deleted group's); returns them."""
        docs = await self._limits.find({"scope_key": scope_key}).to_list(length=None)
        if docs:
            await self._limits.delete_many({"_id": {"$in": [d["_id"] for d in docs]}})
        return docs

    async def write_audit(self, *, action: str, spend_limit_id: str, actor: dict[str, Any],
                          before: SpendLimitDoc | None, after: SpendLimitDoc | None) -> dict[str, Any]:
        doc = {"_id": new_id("sla"), "time": datetime.now(UTC), "action": action,
               "spend_limit_id": spend_limit_id, "actor": actor, "before": before, "after": after}
        await self._audit.insert_one(doc)
        return doc

    async def audit_page(self, *, limit: int, after_id: str | None, before_id: str | None,
                         spend_limit_id: str | None = None) -> tuple[list[dict[str, Any]], bool]:
        """Audit rows, newest first."""
        query = {"spend_limit_id": spend_limit_id} if spend_limit_id else {}
        return await find_page(self._audit, query, limit=limit, after_id=after_id, before_id=before_id,
                               descending=True)
