"""Admin JSON API for issue 14 sections 1 and 4 (thin: parse, call one service, return):

- ``GET /admin/pricing``, ``GET|PUT|DELETE /admin/pricing/{model}``: price overrides (app/admin/pricing.py).
- ``DELETE /admin/users/{user_id}``: delete a user, keep their usage under a pseudonym.
- ``POST /admin/users/import``: users from CSV (``text/csv`` body; ``?dry_run=true``).
- ``GET /admin/users/{user_id}/sessions``: the user's top Claude Code sessions by cost.
- ``GET /admin/usage/export.csv?from=&to=``: usage per user x day x model x provider.
Name and e-mail edits and key expiry are ``PATCH /admin/users/{id}`` / ``PATCH /admin/access-keys/{id}``
(app/admin/routes.py). Authentication as for the rest of ``/admin``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from app.admin.routes import actor
from app.admin.service import public_user
from app.admin.user_import import IMPORT_MAX_BYTES, parse_import
from app.deps import AdminDep, ServicesDep
from app.errors import InvalidRequest, RequestTooLarge
from app.usage import query
from app.usage.export import export_usage_csv

router = APIRouter(prefix="/admin", tags=["admin"])


class RatesIn(BaseModel):
    """USD per million tokens; give at least one (see app/usage/pricing.py RATE_FIELDS)."""

    input: float | str | None = None
    output: float | str | None = None
    cache_write_5m: float | str | None = None
    cache_write_1h: float | str | None = None
    cache_read: float | str | None = None


class PriceIn(BaseModel):
    rates: RatesIn = Field(description="USD per million tokens")


@router.get("/pricing")
async def list_pricing(services: ServicesDep, _: AdminDep) -> dict[str, Any]:
    """Every price in force with its ``source`` (admin | settings | anthropic-page |
    anthropic-published | derived-tier), the unknown-model default and the precedence."""
    return await services.pricing_admin.describe()


@router.get("/pricing/{model:path}")
async def get_pricing(model: str, services: ServicesDep, _: AdminDep) -> dict[str, Any]:
    """The price of one model (any spelling, Bedrock ids included) on each provider."""
    return await services.pricing_admin.get(model)


@router.put("/pricing/{model:path}")
async def put_pricing(model: str, body: PriceIn, request: Request, services: ServicesDep,
                      admin: AdminDep) -> dict[str, Any]:
    """Set an override (``bedrock:``/``anthropic:`` prefix: one provider). Wins over
    PROXY_PRICING_OVERRIDES and the shipped table; applies to events recorded from now on."""
    rates = body.rates.model_dump(exclude_none=True)
    return await services.pricing_admin.put(actor(request, admin), model, rates)


@router.delete("/pricing/{model:path}")
async def delete_pricing(model: str, request: Request, services: ServicesDep, admin: AdminDep) -> dict[str, Any]:
    return await services.pricing_admin.delete(actor(request, admin), model)


@router.post("/users/import")
async def import_users(request: Request, services: ServicesDep, admin: AdminDep,
                       dry_run: bool = False) -> dict[str, Any]:
    """CSV body (header ``name``, optional ``email``; UTF-8). The whole file is checked first;
    rows whose e-mail already belongs to a user are skipped. ``{"dry_run", "created", "skipped"}``."""
    body = await request.body()
    if len(body) > IMPORT_MAX_BYTES:
        raise RequestTooLarge(f"CSV: larger than {IMPORT_MAX_BYTES} bytes; split the file")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequest("CSV: not UTF-8 text") from None
    result = await services.lifecycle.import_users(actor(request, admin), parse_import(text), dry_run=dry_run)
    return {"dry_run": result.dry_run, "created": result.created, "skipped": result.skipped}


@router.delete("/users/{user_id}")
async def delete_user(user_id: str, request: Request, services: ServicesDep, admin: AdminDep) -> dict[str, Any]:
    """Delete a user: name -> ``deleted:<hash>``, e-mail and SSO link removed, keys revoked; their
    usage stays (under the same id, shown with the pseudonym)."""
    return public_user(await services.lifecycle.delete_user(actor(request, admin), user_id))


@router.get("/users/{user_id}/sessions")
async def user_sessions(user_id: str, services: ServicesDep, _: AdminDep,
                        from_: str | None = Query(None, alias="from"), to: str | None = None,
                        limit: int = 10) -> dict[str, Any]:
    """The user's Claude Code sessions with the highest cost (raw events), with the main agent's
    and subagents' share."""
    await services.admin.get_user(user_id)
    return await query.top_sessions(services.store.db, user_id, start=query.parse_time(from_),
                                    end=query.parse_time(to, name="to"), limit=limit)


@router.get("/usage/export.csv")
async def export_usage(services: ServicesDep, _: AdminDep, from_: str | None = Query(None, alias="from"),
                       to: str | None = None) -> Response:
    """CSV: one row per user x UTC day x model x provider (tokens, cost in USD and micro-USD).
    ``from``/``to`` ISO 8601 (default: the last 30 days), whole UTC days."""
    text, first, stop = await export_usage_csv(services.store.db, services.users, query.parse_time(from_),
                                               query.parse_time(to, name="to"))
    name = f"usage-{first:%Y%m%d}-{stop:%Y%m%d}.csv"
    return Response(text, media_type="text/csv; charset=utf-8",
                    headers={"content-disposition": f'attachment; filename="{name}"'})
