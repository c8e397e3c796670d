"""Groups (teams): create, rename, describe, delete, members, model allow-lists. One audit entry each.

Used by the JSON admin API (``/admin/groups``, app/governance/routes.py) and the dashboard. Names
are 1-100 characters, unique, and may not look like an id (``grp_...``), so a reference is never
ambiguous: :meth:`GroupService.resolve` accepts an id or a name. A change of membership or of a
group's allow-list takes effect at once on this replica (the members' cached keys are dropped and
the cached group table updated) and within ``key_cache_ttl_s`` / the cache refresh on others.
Deleting a group removes it from every user and deletes its spend limits.

Errors: InvalidRequest (400) for bad input or a taken name, NotFound (404) for an unknown group or user.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from pymongo.errors import DuplicateKeyError

from app.admin.service import Actor
from app.auth.access import AccessKeyResolver
from app.errors import InvalidRequest, NotFound
from app.governance.allowlist import clean_model_list
from app.governance.cache import GovernanceCache
from app.store.access_keys import AccessKeyRepository
from app.store.audit import AuditRepository
from app.store.groups import GroupDoc, GroupRepository
from app.store.spend_limits import SpendLimitRepository
from app.store.users import UserRepository

NAME_MAX_CHARS = 100
UNSET: Any = object()


def public_group(doc: GroupDoc, *, member_count: int | None = None) -> dict[str, Any]:
    """A group as the API shows it: ``{"type": "rbac_group", "id", "name", "description",
    "allowed_models", "created_at", "updated_at"}`` (+ ``member_count`` when known)."""
    out = {"type": "rbac_group", "id": doc["_id"], "name": doc.get("name"), "description": doc.get("description"),
           "allowed_models": doc.get("allowed_models"), "created_at": _iso(doc.get("created_at")),
           "updated_at": _iso(doc.get("updated_at"))}
    if member_count is not None:
        out["member_count"] = member_count
    return out


def _iso(t: datetime | None) -> str | None:
    return t.isoformat().replace("+00:00", "Z") if t is not None else None


def _clean_name(name: str) -> str:
    name = (name or "").strip()
    if not 1 <= len(name) <= NAME_MAX_CHARS:
        raise InvalidRequest(f"name: must be 1-{NAME_MAX_CHARS} characters")
    if name.startswith("grp_"):
        raise InvalidRequest("name: may not start with 'grp_' (reserved for group ids)")
    return name


class GroupService:
    def __init__(self, groups: GroupRepository, users: UserRepository, keys: AccessKeyRepository,
                 limits: SpendLimitRepository, audit: AuditRepository, resolver: AccessKeyResolver,
                 cache: GovernanceCache) -> None:
        self.repo, self._users, self._keys, self._limits = groups, users, keys, limits
        self._audit, self._resolver, self.cache = audit, resolver, cache

    # --- reads ------------------------------------------------------------------------------

    async def list_groups(self) -> list[dict[str, Any]]:
        """Every group with its ``member_count``, by name."""
        groups = await self.repo.all()
        return [public_group(g, member_count=len(await self.repo.member_ids(g["_id"]))) for g in groups]

    async def resolve(self, ref: str) -> GroupDoc:
        """A group by id (``grp_...``) or name. Raises NotFound."""
        doc = await (self.repo.get(ref) if ref.startswith("grp_") else self.repo.get_by_name(ref))
        if doc is None:
            raise NotFound(f"group {ref!r} not found (create it with POST /admin/groups)")
        return doc

    async def members(self, ref: str) -> list[dict[str, Any]]:
        """``[{"id", "name", "email", "status"}]`` of the group's users."""
        group = await self.resolve(ref)
        ids = await self.repo.member_ids(group["_id"])
        users = await self._users.get_many(ids)
        return [{"type": "user", "id": u["_id"], "name": u.get("name"), "email": u.get("email"),
                 "status": u.get("status")} for u in users.values()]

    async def ids_for(self, refs: Iterable[str], *, create_missing: bool = False) -> list[str]:
        """Group ids for names or ids (SSO's mapped groups), from the cached table. Unknown names
        are dropped, or created (audited, actor ``sso``) with ``create_missing``: SSO passes it when
        ``PROXY_OIDC_GROUP_MAP`` is set, whose targets an admin chose as proxy groups."""
        out: list[str] = []
        for ref in refs:
            group = self.cache.group_by_name_or_id(ref)
            if group is None and create_missing and not ref.startswith("grp_"):
                try:
                    group = await self.create_group(Actor(username="sso", ip=None), ref)
                except InvalidRequest:  # created meanwhile (another replica), or not a valid name
                    group = await self.repo.get_by_name(ref)
                    if group is not None:
                        self.cache.put_group(group)
            if group is not None:
                out.append(group["_id"])
        return list(dict.fromkeys(out))

    # --- writes -----------------------------------------------------------------------------

    async def create_group(self, actor: Actor, name: str, *, description: str | None = None,
                           allowed_models: Sequence[str] | None = None) -> GroupDoc:
        name = _clean_name(name)
        models = clean_model_list(allowed_models) if allowed_models is not None else None
        try:
            doc = await self.repo.create(name, description=(description or "").strip() or None,
                                         allowed_models=models)
        except DuplicateKeyError:
            raise InvalidRequest(f"name: a group named {name!r} exists") from None
        self.cache.put_group(doc)
        await self._write_audit(actor, "group.create", doc["_id"], {"name": name, "allowed_models": models})
        return doc

    async def update_group(self, actor: Actor, ref: str, *, name: str = UNSET, description: str | None = UNSET,
                           allowed_models: Sequence[str] | None = UNSET) -> GroupDoc:
        """Rename, describe and/or set the allow-list (None: no restriction) of a group."""
        group = await self.resolve(ref)
        fields: dict[str, Any] = {}
        if name is not UNSET:
            fields["name"] = _clean_name(name)
        if description is not UNSET:
            fields["description"] = (description or "").strip() or None
        if allowed_models is not UNSET:
            fields["allowed_models"] = clean_model_list(allowed_models) if allowed_models is not None else None
        if not fields:
            raise InvalidRequest("nothing to update: send name, description and/or allowed_models")
        try:
            doc = await self.repo.update(group["_id"], fields)
        except DuplicateKeyError:
            raise InvalidRequest(f"name: a group named {fields['name']!r} exists") from None
        if doc is None:
            raise NotFound(f"group {ref!r} not found")
        self.cache.put_group(doc)
        details = dict(fields)
        if "name" in fields:
            details["old_name"] = group.get("name")
        await self._write_audit(actor, "group.update", doc["_id"], details)
        return doc

    async def delete_group(self, actor: Actor, ref: str) -> GroupDoc:
        group = await self.resolve(ref)
        members = await self.repo.member_ids(group["_id"])
        doc = await self.repo.delete(group["_id"])
        if doc is None:
            raise NotFound(f"group {ref!r} not found")
        removed = []
        for key in (f"rbac_group:{doc['_id']}", f"rbac_group_shared:{doc['_id']}"):
            removed += [d["_id"] for d in await self._limits.delete_scope(key)]
        for limit_id in removed:
            self.cache.limits.remove(limit_id)
        self.cache.drop_group(doc["_id"])
        await self._forget_users(members)
        await self._write_audit(actor, "group.delete", doc["_id"], {"name": doc.get("name"), "members": len(members),
                                                                    "spend_limits_deleted": removed})
        return doc

    async def add_member(self, actor: Actor, ref: str, user_id: str) -> dict[str, Any]:
        group = await self.resolve(ref)
        user = await self.repo.add_member(group["_id"], user_id)
        if user is None:
            raise NotFound(f"user {user_id!r} not found")
        await self._forget_users([user_id])
        await self._write_audit(actor, "group.member.add", group["_id"], {"user_id": user_id})
        return user

    async def remove_member(self, actor: Actor, ref: str, user_id: str) -> dict[str, Any]:
        group = await self.resolve(ref)
        user = await self.repo.remove_member(group["_id"], user_id)
        if user is None:
            raise NotFound(f"user {user_id!r} not found")
        await self._forget_users([user_id])
        await self._write_audit(actor, "group.member.remove", group["_id"], {"user_id": user_id})
        return user

    async def set_user_groups(self, actor: Actor, user_id: str, refs: Sequence[str]) -> dict[str, Any]:
        """Replace a user's groups (ids or names). Raises NotFound for an unknown group or user."""
        group_ids = list(dict.fromkeys([(await self.resolve(r))["_id"] for r in refs]))
        user = await self.repo.set_user_groups(user_id, group_ids)
        if user is None:
            raise NotFound(f"user {user_id!r} not found")
        await self._forget_users([user_id])
        await self._audit.write(actor=actor.username, ip=actor.ip, action="user.groups", target_type="user",
                                target_id=user_id, details={"groups": group_ids})
        return user

    async def _forget_users(self, user_ids: Sequence[str]) -> None:
        """Drop the users' cached keys on this replica (their principal carries the group ids)."""
        for user_id in user_ids:
            for key in await self._keys.list_for_user(user_id, limit=100_000):
                self._resolver.forget(key["key_hash"])

    async def _write_audit(self, actor: Actor, action: str, group_id: str, details: dict[str, Any]) -> None:
        await self._audit.write(actor=actor.username, ip=actor.ip, action=action, target_type="group",
                                target_id=group_id, details=details)


async def set_key_allowed_models(keys: AccessKeyRepository, resolver: AccessKeyResolver, audit: AuditRepository,
                                 actor: Actor, key_id: str, models: Sequence[str] | None) -> dict[str, Any]:
    """Set (a list) or clear (None) one access key's model allow-list; it narrows the user's groups'
    lists (app/governance/allowlist.py). Takes effect at once on this replica. Raises NotFound."""
    cleaned = clean_model_list(models) if models is not None else None
    doc = await keys.update(key_id, {"allowed_models": cleaned})
    if doc is None:
        raise NotFound(f"access key {key_id!r} not found")
    resolver.forget(doc["key_hash"])
    await audit.write(actor=actor.username, ip=actor.ip, action="key.allowed_models", target_type="access_key",
                      target_id=key_id, details={"allowed_models": cleaned})
    return doc
