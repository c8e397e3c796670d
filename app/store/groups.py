"""Groups (teams) of users (collection ``groups``); membership lives on the user (``users.groups``).

A group document::

    {"_id": "grp_<hex>", "name": "contractors", "description": str | None,
     "allowed_models": [model id or glob, ...] | None, "created_at", "updated_at"}

``name`` is unique (index ``name_unique``). A user's ``groups`` field holds group ids
(``grp_...``), in the order they were added. ``allowed_models`` None: the group restricts no model
(app/governance/allowlist.py). Every method does one store round trip except :meth:`delete`
(two: the group, then its id pulled from every user). Raises pymongo errors; ``create`` and
``rename`` raise ``DuplicateKeyError`` for a taken name.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, IndexModel, ReturnDocument

from app.store.ids import new_id

GROUPS = "groups"
INDEXES = {GROUPS: [IndexModel([("name", ASCENDING)], name="name_unique", unique=True)],
           "users": [IndexModel([("groups", ASCENDING)], name="groups")]}

GroupDoc = dict[str, Any]


class GroupRepository:
    def __init__(self, db: Any) -> None:
        self._groups = db[GROUPS]
        self._users = db["users"]

    async def create(self, name: str, *, description: str | None = None,
                     allowed_models: list[str] | None = None) -> GroupDoc:
        now = datetime.now(UTC)
        doc: GroupDoc = {"_id": new_id("grp"), "name": name, "description": description,
                         "allowed_models": allowed_models, "created_at": now, "updated_at": now}
        await self._groups.insert_one(doc)
        return doc

    async def get(self, group_id: str) -> GroupDoc | None:
        return await self._groups.find_one({"_id": group_id})

    async def get_by_name(self, name: str) -> GroupDoc | None:
        return await self._groups.find_one({"name": name})

    async def all(self) -> list[GroupDoc]:
        """Every group, by name (the request path caches this table; groups are few)."""
        return await self._groups.find({}).sort("name", ASCENDING).to_list(length=None)

    async def update(self, group_id: str, fields: dict[str, Any]) -> GroupDoc | None:
        """Set ``fields`` (and ``updated_at``); the group after the change, or None when unknown."""
        return await self._groups.find_one_and_update(
            {"_id": group_id}, {"$set": {**fields, "updated_at": datetime.now(UTC)}},
            return_document=ReturnDocument.AFTER)

    async def delete(self, group_id: str) -> GroupDoc | None:
        """Delete the group and remove it from every user; the deleted group, or None."""
        doc = await self._groups.find_one_and_delete({"_id": group_id})
        if doc is not None:
            await self._users.update_many({"groups": group_id}, {"$pull": {"groups": group_id}})
        return doc

    async def member_ids(self, group_id: str) -> list[str]:
        """Ids of the users whose ``groups`` holds ``group_id``."""
        return [d["_id"] async for d in self._users.find({"groups": group_id}, {"_id": 1})]

    async def add_member(self, group_id: str, user_id: str) -> dict[str, Any] | None:
        """Add the group to the user (no duplicate); the user after the change, or None when unknown."""
        return await self._users.find_one_and_update({"_id": user_id}, {"$addToSet": {"groups": group_id}},
                                                     return_document=ReturnDocument.AFTER)

    async def remove_member(self, group_id: str, user_id: str) -> dict[str, Any] | None:
        return await self._users.find_one_and_update({"_id": user_id}, {"$pull": {"groups": group_id}},
                                                     return_document=ReturnDocument.AFTER)

    async def set_user_groups(self, user_id: str, group_ids: list[str]) -> dict[str, Any] | None:
        return await self._users.find_one_and_update({"_id": user_id}, {"$set": {"groups": group_ids}},
                                                     return_document=ReturnDocument.AFTER)
