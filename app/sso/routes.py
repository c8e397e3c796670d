"""``GET /auth/oidc/login?next=<path>`` and ``GET /auth/oidc/callback`` (the one redirect URI,
``{PROXY_PUBLIC_BASE_URL}/auth/oidc/callback``, so it works the same behind the ALB).

The callback answers with a page for every failure (IdP error, state mismatch, refused token,
disabled user) and never a stack trace. On success it sets ``ccp_me`` always and the dashboard's
``ccp_session`` only for admins (members of ``PROXY_OIDC_ADMIN_GROUPS``); a non-admin who wanted
``/ui`` gets a 403 page that points to ``/me``. ``next`` is validated by ``safe_next``.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from app.errors import ServiceUnavailable
from app.sso.identity import SignInRefused
from app.sso.oidc import IdpError
from app.sso.pages import cookies_for, render_page, security_headers
from app.sso.service import safe_next
from app.ui.session import SessionCodec, new_session

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)

IDP_ERRORS = {"access_denied": "The identity provider refused the sign-in (your account may be disabled "
                               "there, or not assigned to this application).",
              "login_required": "The identity provider needs you to sign in again."}


def _failed(request: Request, message: str, status_code: int, *, next_path: str = "/me") -> Response:
    response = render_page(request, "sso/error.html", {"error": message, "status_code": status_code,
                                                       "next": next_path}, status_code=status_code)
    cookies_for(request.app.state.services).clear_state(response)
    return response


@router.get("/auth/oidc/login")
async def oidc_login(request: Request, next: str | None = None) -> Response:
    services = request.app.state.services
    if services.sso is None:
        return _failed(request, "Single sign-on is not configured on this proxy (PROXY_OIDC_ISSUER).", 404)
    next_path = safe_next(next)
    try:
        url, state = await services.sso.begin(next_path)
    except IdpError as exc:
        log.warning("sso: %s", exc)
        return _failed(request, f"Cannot start the sign-in: {exc}.", 502, next_path=next_path)
    except ServiceUnavailable as exc:
        return _failed(request, exc.message, 503, next_path=next_path)
    response = RedirectResponse(url, status_code=303)
    security_headers(response)
    cookies_for(services).set_state(response, state)
    return response


@router.get("/auth/oidc/callback")
async def oidc_callback(request: Request, code: str = "", state: str = "", error: str = "",
                        error_description: str = "") -> Response:
    services = request.app.state.services
    if services.sso is None:
        return _failed(request, "Single sign-on is not configured on this proxy.", 404)
    cookies = cookies_for(services)
    if error:
        log.info("sso: the IdP answered error=%s", error[:100])
        return _failed(request, IDP_ERRORS.get(error, f"The identity provider answered: {error[:100]}."), 403)
    if not code or not cookies.state_matches(request, state):
        return _failed(request, "This sign-in did not start in this browser, or took longer than 10 minutes "
                                "(state mismatch). Start again.", 400)
    ip = request.client.host if request.client else None
    try:
        signed_in = await services.sso.finish(state=state, code=code, ip=ip)
    except SignInRefused as exc:
        return _failed(request, exc.message, exc.status_code)
    except ServiceUnavailable as exc:
        return _failed(request, exc.message, 503)
    wants_dashboard = signed_in.next_path == "/ui" or signed_in.next_path.startswith(("/ui/", "/ui?"))
    response: Response
    if wants_dashboard and not signed_in.identity.admin:
        groups = ", ".join(sorted(services.sso.admin_groups)) or "(none configured)"
        response = render_page(request, "sso/error.html", {
            "status_code": 403, "next": "/me", "signed_in_as": signed_in.identity.email,
            "error": f"You are signed in as {signed_in.identity.email}, but the dashboard is only for admins "
                     f"(members of: {groups})."}, status_code=403)
    else:
        response = RedirectResponse(signed_in.next_path, status_code=303)
        security_headers(response)
    cookies.clear_state(response)
    cookies.set_me(response, signed_in.session.session_id)
    if signed_in.identity.admin:
        settings = services.settings
        SessionCodec(services.secret_key, ttl_s=settings.admin_token_ttl_s, secure=settings.cookie_secure).store(
            response, new_session(signed_in.identity.actor, session_id=signed_in.session.session_id))
    return response
