"""FastAPI dependencies: typed aliases for what routes need (settings, services, principals)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.auth.access import AccessKeyResolver, Principal
from app.auth.admin import AdminAuth
from app.config import Settings
from app.errors import AuthenticationFailed
from app.proxy.headers import PROXY_KEY_HEADER
from app.services import Services


# ``async def`` on purpose: FastAPI runs plain ``def`` dependencies in a worker thread, which cost
# ~80 us of CPU each per request (bench/README.md).
async def get_services(request: Request) -> Services:
    return request.app.state.services


async def get_settings_dep(request: Request) -> Settings:
    return request.app.state.services.settings


ServicesDep = Annotated[Services, Depends(get_services)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


async def principal_from_path(access_key: str, request: Request) -> Principal:
    """Access key from ``/ak/{access_key}/...``."""
    resolver: AccessKeyResolver = request.app.state.services.resolver
    return await resolver.resolve(access_key, where="path")


async def principal_from_header(request: Request) -> Principal:
    """Access key from the ``x-proxy-key`` header."""
    resolver: AccessKeyResolver = request.app.state.services.resolver
    return await resolver.resolve(request.headers.get(PROXY_KEY_HEADER), where="header")


PathPrincipalDep = Annotated[Principal, Depends(principal_from_path)]
HeaderPrincipalDep = Annotated[Principal, Depends(principal_from_header)]


async def require_admin(request: Request) -> str:
    """``Authorization: Bearer <admin token>`` (or an admin API key in ``x-api-key``: the name
    ``admin_api_key:<id>``) -> the admin username; 401 for a missing, bad,
    expired or revoked token, 503 when the store cannot say. The token's session id is left on
    ``request.state.admin_session_id`` (for logout)."""
    auth: AdminAuth = request.app.state.services.admin_auth
    governance = request.app.state.services.governance
    if governance is not None and (api_key := request.headers.get("x-api-key")):
        # Admin API key (app/governance/admin_keys.py): read-only keys are refused on writes (403).
        return (await governance.admin_keys.authenticate(api_key, request.method)).actor_name
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise AuthenticationFailed("admin bearer token required: POST /admin/auth/login with HTTP Basic")
    identity = await auth.verify_token(token.strip())
    request.state.admin_session_id = identity.session_id
    return identity.username


AdminDep = Annotated[str, Depends(require_admin)]
