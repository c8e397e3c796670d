"""Proxy routes: the Messages API under two spellings of the access key, and Claude Code's probes.

- ``/ak/{access_key}/v1/messages[/count_tokens]``: key in the path (``ANTHROPIC_BASE_URL=https://host/ak/<key>``).
- ``/v1/messages[/count_tokens]`` with ``x-proxy-key: <key>`` (``ANTHROPIC_CUSTOM_HEADERS``); preferred,
  since URLs end up in logs.
Any query string (e.g. ``?beta=true``) passes through.

A ``POST`` to these paths is served by ``asgi.MessagesASGI`` in front of the router (same code,
``serve_messages``, without FastAPI's per-request work); these routes answer what it passes on
(other methods: 405) and document the paths.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from app.auth.access import Principal
from app.deps import HeaderPrincipalDep, PathPrincipalDep, ServicesDep
from app.proxy.asgi import serve_messages
from app.proxy.request import Endpoint
from app.services import Services

router = APIRouter()


async def _forward(request: Request, services: Services, principal: Principal, endpoint: Endpoint) -> Response:
    return await serve_messages(request, services, principal, endpoint)


@router.post("/v1/messages", include_in_schema=False)
async def messages(request: Request, services: ServicesDep, principal: HeaderPrincipalDep) -> Response:
    return await _forward(request, services, principal, "messages")


@router.post("/v1/messages/count_tokens", include_in_schema=False)
async def count_tokens(request: Request, services: ServicesDep, principal: HeaderPrincipalDep) -> Response:
    return await _forward(request, services, principal, "count_tokens")


@router.post("/ak/{access_key}/v1/messages", include_in_schema=False)
async def messages_ak(request: Request, services: ServicesDep, principal: PathPrincipalDep) -> Response:
    return await _forward(request, services, principal, "messages")


@router.post("/ak/{access_key}/v1/messages/count_tokens", include_in_schema=False)
async def count_tokens_ak(request: Request, services: ServicesDep, principal: PathPrincipalDep) -> Response:
    return await _forward(request, services, principal, "count_tokens")


@router.api_route("/api/hello", methods=["GET", "HEAD"], include_in_schema=False)
@router.api_route("/ak/{access_key}/api/hello", methods=["GET", "HEAD"], include_in_schema=False)
async def hello() -> Response:
    """Claude Code probes this at start; 200 with no key check (it carries no data)."""
    return Response(content=b'{"message":"hello"}', media_type="application/json")
