"""FastAPI dependencies: typed aliases for what routes need (services, principals, the admin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBasic, HTTPBasicCredentials, HTTPBearer

from app.auth.access import AccessKeyResolver, Principal
from app.auth.admin import AdminAuth
from app.errors import AuthenticationFailed
from app.proxy.headers import PROXY_KEY_HEADER
from app.services import Services


# ``async def`` on purpose: FastAPI runs plain ``def`` dependencies in a worker thread, which cost
# ~80 us of CPU each per request (bench/README.md).
async def get_services(request: Request) -> Services:
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]


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


# auto_error=False: FastAPI's own 401/403 would not carry Anthropic's error envelope; ours do.
_bearer = HTTPBearer(auto_error=False, description="Admin token from POST /admin/auth/login")
_basic = HTTPBasic(auto_error=False, realm="claude-code-proxy", description="Admin username and password")
BASIC_CHALLENGE = {"www-authenticate": 'Basic realm="claude-code-proxy"'}


async def require_admin_token(request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None,
                                                                       Depends(_bearer)]) -> str:
    """``Authorization: Bearer <admin token>`` (or an admin API key in ``x-api-key``: the name
    ``admin_api_key:<id>``) -> the admin username; 401 for a missing, bad,
    expired or revoked token, 503 when the store cannot say. The token's session id is left on
    ``request.state.admin_session_id`` (for logout). Dashboard sessions: app/ui/session.py."""
    auth: AdminAuth = request.app.state.services.admin_auth
    governance = request.app.state.services.governance
    if governance is not None and (api_key := request.headers.get("x-api-key")):
        # Admin API key (app/governance/admin_keys.py): read-only keys are refused on writes (403).
        return (await governance.admin_keys.authenticate(api_key, request.method)).actor_name
    token = credentials.credentials.strip() if credentials else ""
    if not token:
        raise AuthenticationFailed("admin bearer token required: POST /admin/auth/login with HTTP Basic")
    identity = await auth.verify_token(token)
    request.state.admin_session_id = identity.session_id
    return identity.username


async def basic_credentials(request: Request) -> HTTPBasicCredentials:
    """``Authorization: Basic ...`` -> username and password; 401 (with a Basic challenge) when it
    is missing, not Basic, not base64 of ASCII ``user:password`` (FastAPI's ``HTTPBasic`` decodes
    ASCII only), or names no user."""
    try:
        credentials = await _basic(request)
    except HTTPException:
        credentials = None
    if credentials is None or not credentials.username:
        raise AuthenticationFailed("HTTP Basic credentials required (admin username and password)",
                                   headers=BASIC_CHALLENGE)
    return credentials


AdminDep = Annotated[str, Depends(require_admin_token)]
BasicCredentialsDep = Annotated[HTTPBasicCredentials, Depends(basic_credentials)]
