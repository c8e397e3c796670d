"""Usage routes (thin: parse, call app/usage/query.py, return).

- ``GET /admin/usage`` and ``GET /admin/usage/top-users``: admin bearer token.
- ``GET /v1/usage/me`` (``x-proxy-key``) and ``GET /ak/{access_key}/v1/usage/me``: a key holder's
  own usage, limits and quota status.
- ``GET /metrics``: Prometheus text format; ``Authorization: Bearer <PROXY_METRICS_TOKEN>`` when that
  is set, otherwise loopback clients only.
"""

from __future__ import annotations

import hmac
import ipaddress
from typing import Any

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from app.auth.access import Principal
from app.deps import AdminDep, HeaderPrincipalDep, PathPrincipalDep, ServicesDep
from app.errors import AuthenticationFailed, InvalidRequest, NotFound, PermissionDenied
from app.services import Services
from app.usage import query

router = APIRouter()

FROM = Query(None, alias="from", description="ISO 8601 start (default: 24 h before `to`)")
TO = Query(None, description="ISO 8601 end, exclusive (default: now)")


async def _report(services: Services, *, from_: str | None, to: str | None, granularity: str | None,
                  tz: str | None, user_id: str | None = None, access_key_id: str | None = None,
                  provider: str | None = None, model: str | None = None) -> dict[str, Any]:
    zone = query.parse_zone(tz)
    return await query.usage_report(
        services.store.db, start=query.parse_time(from_, zone), end=query.parse_time(to, zone, name="to"),
        granularity=query.parse_granularity(granularity), tz=zone.key, retention=services.usage.retention,
        user_id=user_id, access_key_id=access_key_id, provider=provider, model=model)


@router.get("/admin/usage", tags=["admin"])
async def admin_usage(services: ServicesDep, _: AdminDep, from_: str | None = FROM, to: str | None = TO,
                      granularity: str | None = None, tz: str | None = None, user_id: str | None = None,
                      access_key_id: str | None = None, provider: str | None = None,
                      model: str | None = None) -> dict[str, Any]:
    """Totals, series (``granularity`` minute|hour|day|week|month, zone ``tz``) and breakdowns by
    provider and model; tokens in tokens, cost in micro-USD (``cost_usd_micros``) and USD."""
    return await _report(services, from_=from_, to=to, granularity=granularity, tz=tz, user_id=user_id,
                         access_key_id=access_key_id, provider=provider, model=model)


@router.get("/admin/usage/top-users", tags=["admin"])
async def admin_top_users(services: ServicesDep, _: AdminDep, from_: str | None = FROM, to: str | None = TO,
                          limit: int = 10, metric: str = "tokens") -> dict[str, Any]:
    """The users with the most ``metric`` (tokens | cost | requests) in the range (UTC)."""
    return await query.top_users(services.store.db, start=query.parse_time(from_), end=query.parse_time(to, name="to"),
                                 limit=limit, metric=metric, retention=services.usage.retention)  # type: ignore[arg-type]


async def _me(services: Services, principal: Principal, *, from_: str | None, to: str | None,
              granularity: str | None, tz: str | None, scope: str) -> dict[str, Any]:
    if scope not in ("key", "user"):
        raise InvalidRequest("scope: must be key (this access key) or user (all of your keys)")
    ids = {"access_key_id": principal.access_key_id} if scope == "key" else {"user_id": principal.user_id}
    usage = await _report(services, from_=from_, to=to, granularity=granularity, tz=tz, **ids)
    quota = await services.quotas.status(principal) if services.quotas is not None else {}
    return {"access_key_id": principal.access_key_id, "user_id": principal.user_id, "usage": usage,
            "limits": {"access_key": principal.key_limits, "user": principal.user_limits}, "quota": quota}


@router.get("/v1/usage/me", tags=["usage"])
async def usage_me(services: ServicesDep, principal: HeaderPrincipalDep, from_: str | None = FROM,
                   to: str | None = TO, granularity: str | None = None, tz: str | None = None,
                   scope: str = "key") -> dict[str, Any]:
    """Your own usage (``scope=key``: this access key; ``user``: all your keys), limits and quota use."""
    return await _me(services, principal, from_=from_, to=to, granularity=granularity, tz=tz, scope=scope)


@router.get("/ak/{access_key}/v1/usage/me", include_in_schema=False)
async def usage_me_ak(services: ServicesDep, principal: PathPrincipalDep, from_: str | None = FROM,
                      to: str | None = TO, granularity: str | None = None, tz: str | None = None,
                      scope: str = "key") -> dict[str, Any]:
    return await _me(services, principal, from_=from_, to=to, granularity=granularity, tz=tz, scope=scope)


def authorize_metrics(request: Request, services: Services) -> None:
    """Bearer ``PROXY_METRICS_TOKEN`` when set (401 otherwise); without it, loopback clients only (403)."""
    token = services.settings.metrics_token
    if token is not None:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(),
                                                                 token.get_secret_value().encode()):
            raise AuthenticationFailed("metrics: Authorization: Bearer <PROXY_METRICS_TOKEN> required")
        return
    host = request.client.host if request.client else ""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise PermissionDenied("metrics: only loopback clients may scrape without PROXY_METRICS_TOKEN")


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request, services: ServicesDep) -> Response:
    authorize_metrics(request, services)
    if services.metrics is None:
        raise NotFound("metrics are not enabled in this app")
    body, content_type = services.metrics.render()
    return Response(content=body, media_type=content_type)
