"""Admin JSON API (``/admin/...``): login, users, access keys and their limits. In OpenAPI at ``/docs``
when ``PROXY_API_DOCS_ENABLED=true``.
Usage reports (``/admin/usage``) live in app/usage/routes.py.

Authentication: ``POST /admin/auth/login`` with HTTP Basic returns a bearer token; every other
route needs ``Authorization: Bearer <token>``; ``POST /admin/auth/logout`` revokes the token (with
``?everywhere=true`` every admin token and dashboard session). Errors use Anthropic's envelope.
``GET /admin/audit`` reads the audit log (filters, paging, CSV; app/admin/audit.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from app.admin.audit import audit_filter, page_bounds, public_entry, read_page, to_csv, wants_csv
from app.admin.service import Actor, public_key, public_user
from app.deps import AdminDep, BasicCredentialsDep, ServicesDep
from app.errors import InvalidRequest

router = APIRouter(prefix="/admin", tags=["admin"])


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int = Field(description="seconds")


class UserIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    email: str | None = Field(default=None, max_length=320)


class KeyIn(BaseModel):
    name: str | None = Field(default=None, max_length=200)
    fallback_policy: str | None = None


def actor(request: Request, username: str) -> Actor:
    return Actor(username=username, ip=request.client.host if request.client else None)


@router.post("/auth/login", response_model=TokenOut)
async def login(request: Request, services: ServicesDep, credentials: BasicCredentialsDep) -> TokenOut:
    """HTTP Basic (admin username and password) -> bearer token valid ``expires_in`` seconds."""
    grant = await services.admin.login(actor(request, credentials.username), credentials.password, via="api")
    return TokenOut(access_token=grant.token, expires_in=services.admin_auth.token_ttl_s)


@router.post("/auth/logout", status_code=204)
async def logout(request: Request, services: ServicesDep, admin: AdminDep, everywhere: bool = False) -> Response:
    """Revoke this bearer token now (``everywhere=true``: every admin token and dashboard session)."""
    await services.admin.logout(actor(request, admin), request.state.admin_session_id, via="api",
                                everywhere=everywhere)
    return Response(status_code=204)


@router.get("/users")
async def list_users(services: ServicesDep, _: AdminDep, search: str | None = None,
                     status: str | None = None, limit: int = 100, skip: int = 0) -> dict[str, Any]:
    users = await services.users.list(search=search, status=status, limit=min(max(limit, 1), 500), skip=skip)
    return {"data": [public_user(u) for u in users]}


@router.post("/users", status_code=201)
async def create_user(body: UserIn, request: Request, services: ServicesDep, admin: AdminDep) -> dict[str, Any]:
    return public_user(await services.admin.create_user(actor(request, admin), body.name, body.email))


@router.get("/users/{user_id}")
async def get_user(user_id: str, services: ServicesDep, _: AdminDep) -> dict[str, Any]:
    user = await services.admin.get_user(user_id)
    keys = await services.access_keys.list_for_user(user_id)
    return {**public_user(user), "access_keys": [public_key(k) for k in keys]}


@router.post("/users/{user_id}/access-keys", status_code=201)
async def create_key(user_id: str, request: Request, services: ServicesDep, admin: AdminDep,
                     body: KeyIn | None = None) -> dict[str, Any]:
    """Returns the plaintext ``key`` this once; only its HMAC is stored."""
    body = body or KeyIn()
    issued = await services.admin.create_key(actor(request, admin), user_id, name=body.name,
                                             fallback_policy=body.fallback_policy)
    return {**public_key(issued.doc), "key": issued.key}


@router.post("/access-keys/{key_id}/rotate", status_code=201)
async def rotate_key(key_id: str, request: Request, services: ServicesDep, admin: AdminDep) -> dict[str, Any]:
    issued = await services.admin.rotate_key(actor(request, admin), key_id)
    return {**public_key(issued.doc), "key": issued.key, "rotated_from": key_id}


@router.delete("/access-keys/{key_id}")
async def revoke_key(key_id: str, request: Request, services: ServicesDep, admin: AdminDep) -> dict[str, Any]:
    return public_key(await services.admin.revoke_key(actor(request, admin), key_id))



class LimitsPatch(BaseModel):
    """``limits``: fields to set (null clears one; see app/usage/limits.py LIMITS); null clears all."""

    limits: dict[str, Any] | None = None


class KeyPatch(LimitsPatch):
    """Also ``fallback_policy``: anthropic_first | bedrock_only | anthropic_only (null: the default),
    and ``expires_at`` (ISO 8601, in the future; null: never)."""

    fallback_policy: str | None = None
    expires_at: datetime | None = None


class UserPatch(LimitsPatch):
    """Also ``name`` and ``email`` (null or "" removes the e-mail; e-mails are unique)."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    email: str | None = Field(default=None, max_length=320)


class BedrockKeyIn(BaseModel):
    api_key: str = Field(min_length=1, max_length=4096, description="Amazon Bedrock API key (write-only)")


class ModelMapIn(BaseModel):
    bedrock_model_id: str = Field(min_length=1, max_length=256,
                                  description="Bedrock model id or inference profile id/ARN")


class UserStatusIn(BaseModel):
    status: str = Field(description="active | disabled")


@router.put("/users/{user_id}/status")
async def set_user_status(user_id: str, body: UserStatusIn, request: Request, services: ServicesDep,
                          admin: AdminDep) -> dict[str, Any]:
    """Disable (or enable again) a user: their keys and single sign-on sessions stop at once."""
    return public_user(await services.admin.set_user_status(actor(request, admin), user_id, body.status))


@router.patch("/users/{user_id}")
async def patch_user(user_id: str, body: UserPatch, request: Request, services: ServicesDep,
                     admin: AdminDep) -> dict[str, Any]:
    """Set the user's ``name``, ``email`` and/or quotas and rate limits (``limits``; all of the
    user's keys share them)."""
    fields = body.model_fields_set & {"limits", "name", "email"}
    if not fields:
        raise InvalidRequest("nothing to update: send {\"name\": ...}, {\"email\": ...} and/or {\"limits\": {...}}")
    who = actor(request, admin)
    doc = None
    if fields & {"name", "email"}:
        doc = await services.lifecycle.update_user(who, user_id, name=body.name, email=body.email,
                                                   email_set="email" in fields)
    if "limits" in fields:
        doc = await services.admin.set_limits(who, "user", user_id, body.limits)
    assert doc is not None  # fields is not empty, so one of the branches above ran
    return public_user(doc)


@router.patch("/access-keys/{key_id}")
async def patch_key(key_id: str, body: KeyPatch, request: Request, services: ServicesDep,
                    admin: AdminDep) -> dict[str, Any]:
    """Set one access key's quotas and rate limits (checked in addition to its user's) and/or its
    ``fallback_policy``."""
    fields = body.model_fields_set & {"limits", "fallback_policy", "expires_at"}
    if not fields:
        raise InvalidRequest("nothing to update: send {\"limits\": {...}}, {\"fallback_policy\": ...} "
                             "and/or {\"expires_at\": ...}")
    who = actor(request, admin)
    doc = None
    if "fallback_policy" in fields:
        doc = await services.admin.set_key_policy(who, key_id, body.fallback_policy)
    if "limits" in fields:
        doc = await services.admin.set_limits(who, "access_key", key_id, body.limits)
    if "expires_at" in fields:
        doc = await services.lifecycle.set_key_expiry(who, key_id, body.expires_at)
    assert doc is not None  # fields is not empty, so one of the branches above ran
    return public_key(doc)


@router.post("/access-keys/{key_id}/bedrock-key")
async def set_bedrock_key(key_id: str, body: BedrockKeyIn, request: Request, services: ServicesDep,
                          admin: AdminDep) -> dict[str, Any]:
    """Register or replace the Bedrock API key this access key's fallbacks use (write-only: it is
    stored envelope-encrypted and never returned)."""
    return public_key(await services.admin.set_bedrock_key(actor(request, admin), key_id, body.api_key))


@router.delete("/access-keys/{key_id}/bedrock-key")
async def delete_bedrock_key(key_id: str, request: Request, services: ServicesDep,
                             admin: AdminDep) -> dict[str, Any]:
    """Remove the Bedrock API key: fallbacks use the proxy's own AWS credentials again."""
    return public_key(await services.admin.clear_bedrock_key(actor(request, admin), key_id))


@router.get("/model-map")
async def get_model_map(services: ServicesDep, _: AdminDep) -> dict[str, Any]:
    """The Anthropic -> Bedrock model mapping in force: built-in table, ``PROXY_BEDROCK_MODEL_MAP``
    and admin overrides (``source`` says which)."""
    model_map = services.model_map
    assert model_map is not None  # app.main always sets it; only hand-built test Services omit it
    return await model_map.describe()


@router.put("/model-map/{anthropic_model}")
async def put_model_map(anthropic_model: str, body: ModelMapIn, request: Request, services: ServicesDep,
                        admin: AdminDep) -> dict[str, Any]:
    """Override where one Anthropic model id goes on Bedrock (all replicas within 30 s)."""
    model_map = services.model_map
    assert model_map is not None  # app.main always sets it; only hand-built test Services omit it
    return await model_map.put(actor(request, admin), anthropic_model, body.bedrock_model_id)


@router.delete("/model-map/{anthropic_model}")
async def delete_model_map(anthropic_model: str, request: Request, services: ServicesDep,
                           admin: AdminDep) -> dict[str, Any]:
    """Remove an admin override (the settings or the built-in table apply again)."""
    model_map = services.model_map
    assert model_map is not None  # app.main always sets it; only hand-built test Services omit it
    return await model_map.delete(actor(request, admin), anthropic_model)


@router.get("/audit")
async def list_audit(request: Request, services: ServicesDep, _: AdminDep, actor: str | None = None,
                     action: str | None = None, target: str | None = None,
                     from_: str | None = Query(None, alias="from"), to: str | None = None, tz: str | None = None,
                     limit: int = 100, offset: int = 0, format: str | None = None) -> Response:
    """The audit log, newest first: ``actor`` / ``action`` (exact, or a prefix ending in ``*``),
    ``target`` (an id), ``from`` / ``to`` (ISO 8601, ``tz`` default UTC; a bare date in ``to``
    includes that day), ``limit`` (1..500) and ``offset``. JSON ``{"data": [entry], "has_more",
    "next_offset"}`` (each entry with ``target_name``), or CSV with ``?format=csv`` or ``Accept: text/csv``."""
    where = audit_filter(request.query_params)
    limit, offset = page_bounds(limit, offset)
    page = await read_page(services.audit, services.users, services.access_keys, where, limit=limit, offset=offset)
    rows = [public_entry(e, page.names) for e in page.entries]
    if wants_csv(format, request.headers.get("accept")):
        return Response(to_csv(rows), media_type="text/csv; charset=utf-8",
                        headers={"content-disposition": 'attachment; filename="audit.csv"'})
    return JSONResponse({"data": rows, "has_more": page.has_more,
                         "next_offset": offset + len(rows) if page.has_more else None})
