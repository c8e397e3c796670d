"""Governance HTTP API (docs/governance.md). Thin: parse, call one service method, return.

- ``/v1/organizations/spend_limits`` (Admin API shapes; app/governance/spend.py): POST (create or
  replace), GET (list: ``limit``, ``after_id``, ``before_id``), GET ``/effective``, GET ``/audit``,
  GET / DELETE ``/{spend_limit_id}``.
- ``/admin/groups`` (app/governance/groups.py): list, create, read (with members), PATCH (rename,
  description, ``allowed_models``), DELETE; ``/admin/groups/{group}/members``;
  ``PUT /admin/users/{user_id}/groups``; ``PUT /admin/access-keys/{key_id}/allowed-models``.
- ``/admin/api-keys`` (app/governance/admin_keys.py): list, create (the key is shown once), DELETE (revoke).
- ``GET /v1/models`` and ``/ak/{access_key}/v1/models`` (app/governance/allowlist.py).

Admin routes take the admin bearer token or an admin API key (``x-api-key``; read-only keys are
refused on writes). ``request-id`` headers come from app/governance/http.py.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from app.admin.routes import actor
from app.admin.service import public_key, public_user
from app.deps import AdminDep, HeaderPrincipalDep, PathPrincipalDep, ServicesDep
from app.errors import InvalidRequest, NotFound
from app.governance.admin_keys import public_admin_key
from app.governance.groups import UNSET, public_group, set_key_allowed_models

router = APIRouter()
SPEND = "/v1/organizations/spend_limits"


# --- spend limits ---------------------------------------------------------------------------

@router.post(SPEND, tags=["spend limits"])
async def set_spend_limit(request: Request, services: ServicesDep, admin: AdminDep) -> dict[str, Any]:
    """Create or replace the cap of one scope and period: ``{"scope", "amount", "period"}``."""
    try:
        body = await request.json()
    except ValueError:
        raise InvalidRequest("body: expected a JSON object") from None
    limit, _ = await services.governance.spend.set_limit(actor(request, admin), body)
    return limit


@router.get(SPEND, tags=["spend limits"])
async def list_spend_limits(services: ServicesDep, _: AdminDep, limit: int | None = None,
                            after_id: str | None = None, before_id: str | None = None) -> dict[str, Any]:
    return (await services.governance.spend.list_limits(limit=limit, after_id=after_id, before_id=before_id)).body()


@router.get(SPEND + "/effective", tags=["spend limits"])
async def effective_spend_limits(services: ServicesDep, _: AdminDep, limit: int | None = None,
                                 after_id: str | None = None, q: str | None = None, sort: str | None = None,
                                 period: list[str] | None = Query(None),
                                 user_ids: list[str] | None = Query(None)) -> dict[str, Any]:
    """Each user's resolved cap and period-to-date spend, per period (``sort=spend_desc``, ``q``)."""
    return (await services.governance.spend.effective(periods=period, q=q, sort=sort, user_ids=user_ids,
                                                      limit=limit, after_id=after_id)).body()


@router.get(SPEND + "/audit", tags=["spend limits"])
async def spend_limit_audit(services: ServicesDep, _: AdminDep, limit: int | None = None,
                            after_id: str | None = None, before_id: str | None = None,
                            spend_limit_id: str | None = None) -> dict[str, Any]:
    """Every change (before / after, who), newest first."""
    return (await services.governance.spend.audit(limit=limit, after_id=after_id, before_id=before_id,
                                                  spend_limit_id=spend_limit_id)).body()


@router.get(SPEND + "/{spend_limit_id}", tags=["spend limits"])
async def get_spend_limit(spend_limit_id: str, services: ServicesDep, _: AdminDep) -> dict[str, Any]:
    return await services.governance.spend.get_limit(spend_limit_id)


@router.delete(SPEND + "/{spend_limit_id}", tags=["spend limits"])
async def delete_spend_limit(spend_limit_id: str, request: Request, services: ServicesDep,
                             admin: AdminDep) -> dict[str, Any]:
    return await services.governance.spend.delete_limit(actor(request, admin), spend_limit_id)


# --- groups ---------------------------------------------------------------------------------

class GroupIn(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    description: str | None = Field(default=None, max_length=1000)
    allowed_models: list[str] | None = None


class GroupPatch(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    description: str | None = Field(default=None, max_length=1000)
    allowed_models: list[str] | None = None


class MemberIn(BaseModel):
    user_id: str


class UserGroupsIn(BaseModel):
    groups: list[str] = Field(description="group ids or names")


class AllowedModelsIn(BaseModel):
    allowed_models: list[str] | None


class AdminKeyIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    access: str = Field(description="read_only | read_write")


@router.get("/admin/groups", tags=["groups"])
async def list_groups(services: ServicesDep, _: AdminDep) -> dict[str, Any]:
    return {"data": await services.governance.groups.list_groups()}


@router.post("/admin/groups", status_code=201, tags=["groups"])
async def create_group(body: GroupIn, request: Request, services: ServicesDep, admin: AdminDep) -> dict[str, Any]:
    doc = await services.governance.groups.create_group(actor(request, admin), body.name, description=body.description,
                                                        allowed_models=body.allowed_models)
    return public_group(doc, member_count=0)


@router.get("/admin/groups/{group}", tags=["groups"])
async def get_group(group: str, services: ServicesDep, _: AdminDep) -> dict[str, Any]:
    """A group (by id or name) with its ``members``."""
    doc = await services.governance.groups.resolve(group)
    members = await services.governance.groups.members(doc["_id"])
    return {**public_group(doc, member_count=len(members)), "members": members}


@router.patch("/admin/groups/{group}", tags=["groups"])
async def patch_group(group: str, body: GroupPatch, request: Request, services: ServicesDep,
                      admin: AdminDep) -> dict[str, Any]:
    """Rename, describe, or set ``allowed_models`` (null: no restriction)."""
    sent = body.model_fields_set
    if "name" in sent and body.name is None:
        raise InvalidRequest("name: may not be null")
    doc = await services.governance.groups.update_group(
        actor(request, admin), group, name=body.name if "name" in sent else UNSET,
        description=body.description if "description" in sent else UNSET,
        allowed_models=body.allowed_models if "allowed_models" in sent else UNSET)
    return public_group(doc)


@router.delete("/admin/groups/{group}", tags=["groups"])
async def delete_group(group: str, request: Request, services: ServicesDep, admin: AdminDep) -> dict[str, Any]:
    """Delete a group: removed from its members; its spend limits are deleted."""
    doc = await services.governance.groups.delete_group(actor(request, admin), group)
    return {"type": "rbac_group_deleted", "id": doc["_id"]}


@router.post("/admin/groups/{group}/members", tags=["groups"])
async def add_member(group: str, body: MemberIn, request: Request, services: ServicesDep,
                     admin: AdminDep) -> dict[str, Any]:
    return public_user(await services.governance.groups.add_member(actor(request, admin), group, body.user_id))


@router.delete("/admin/groups/{group}/members/{user_id}", tags=["groups"])
async def remove_member(group: str, user_id: str, request: Request, services: ServicesDep,
                        admin: AdminDep) -> dict[str, Any]:
    return public_user(await services.governance.groups.remove_member(actor(request, admin), group, user_id))


@router.put("/admin/users/{user_id}/groups", tags=["groups"])
async def set_user_groups(user_id: str, body: UserGroupsIn, request: Request, services: ServicesDep,
                          admin: AdminDep) -> dict[str, Any]:
    return public_user(await services.governance.groups.set_user_groups(actor(request, admin), user_id, body.groups))


@router.put("/admin/access-keys/{key_id}/allowed-models", tags=["groups"])
async def set_key_models(key_id: str, body: AllowedModelsIn, request: Request, services: ServicesDep,
                         admin: AdminDep) -> dict[str, Any]:
    """The key's own model allow-list (null: none; it narrows the user's groups' lists)."""
    doc = await set_key_allowed_models(services.access_keys, services.resolver, services.audit, actor(request, admin),
                                       key_id, body.allowed_models)
    return {**public_key(doc), "allowed_models": doc.get("allowed_models")}


# --- admin API keys -------------------------------------------------------------------------

@router.get("/admin/api-keys", tags=["admin api keys"])
async def list_admin_keys(services: ServicesDep, _: AdminDep, limit: int | None = None,
                          after_id: str | None = None, before_id: str | None = None) -> dict[str, Any]:
    return (await services.governance.admin_keys.list(limit=limit, after_id=after_id, before_id=before_id)).body()


@router.post("/admin/api-keys", status_code=201, tags=["admin api keys"])
async def create_admin_key(body: AdminKeyIn, request: Request, services: ServicesDep, admin: AdminDep) -> dict[str, Any]:
    """Returns the plaintext ``key`` this once; only its HMAC is stored."""
    key, doc = await services.governance.admin_keys.create(actor(request, admin), body.name, body.access)
    return {**public_admin_key(doc), "key": key}


@router.delete("/admin/api-keys/{key_id}", tags=["admin api keys"])
async def revoke_admin_key(key_id: str, request: Request, services: ServicesDep, admin: AdminDep) -> dict[str, Any]:
    return public_admin_key(await services.governance.admin_keys.revoke(actor(request, admin), key_id))


# --- models ---------------------------------------------------------------------------------

def _models(services: Any, principal: Any, limit: int | None, after_id: str | None,
            before_id: str | None) -> JSONResponse:
    if limit is not None and not 1 <= limit <= 1000:
        raise InvalidRequest("limit: must be between 1 and 1000")
    page = services.governance.models.list_models(principal, limit=limit or 1000, after_id=after_id,
                                                  before_id=before_id)
    return JSONResponse(page)


@router.get("/v1/models", include_in_schema=False)
async def list_models(services: ServicesDep, principal: HeaderPrincipalDep, limit: int | None = None,
                      after_id: str | None = None, before_id: str | None = None) -> JSONResponse:
    return _models(services, principal, limit, after_id, before_id)


@router.get("/ak/{access_key}/v1/models", include_in_schema=False)
async def list_models_ak(services: ServicesDep, principal: PathPrincipalDep, limit: int | None = None,
                         after_id: str | None = None, before_id: str | None = None) -> JSONResponse:
    return _models(services, principal, limit, after_id, before_id)


@router.get("/v1/models/{model_id}", include_in_schema=False)
async def get_model(model_id: str, services: ServicesDep, principal: HeaderPrincipalDep) -> dict[str, Any]:
    found = [m for m in services.governance.models.list_models(principal)["data"] if m["id"] == model_id]
    if not found:
        raise NotFound(f"model {model_id!r} not found or not allowed for this access key")
    return found[0]
