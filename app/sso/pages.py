"""Cookies and rendering for the SSO pages (``/auth/oidc/*``, ``/me``).

Cookies (``HttpOnly``, ``SameSite=Lax``, ``Secure`` unless ``settings.cookie_secure`` is false),
each an ``itsdangerous`` timed signature with ``services.secret_key``:

- ``ccp_oidc`` (Path ``/auth/oidc``, 10 minutes, salt ``oidc-state``): the ``state`` of the sign-in
  this browser started. The callback requires it to equal the ``state`` parameter: a callback URL
  made by someone else's sign-in (login CSRF) does not match this browser's cookie.
- ``ccp_me`` (Path ``/me``, ``admin_token_ttl_s``, salt ``me-session``): ``{"sid", "csrf"}``, the
  SSO session (app/sso/sessions.py) and the CSRF token of the ``/me`` forms.
- the dashboard's own ``ccp_session`` (app/ui/session.py) for admins, naming the same session.

Pages use the dashboard's Jinja environment (autoescape on) and the same security headers.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.responses import HTMLResponse, Response

from app.ui.render import environment

STATE_COOKIE, STATE_PATH, STATE_TTL_S = "ccp_oidc", "/auth/oidc", 600
ME_COOKIE, ME_PATH = "ccp_me", "/me"


@dataclass(frozen=True)
class MeCookie:
    session_id: str
    csrf: str


class SsoCookies:
    def __init__(self, secret_key: bytes, *, ttl_s: int, secure: bool) -> None:
        self._state = URLSafeTimedSerializer(secret_key, salt="oidc-state")
        self._me = URLSafeTimedSerializer(secret_key, salt="me-session")
        self.ttl_s, self.secure = ttl_s, secure

    def set_state(self, response: Response, state: str) -> None:
        response.set_cookie(STATE_COOKIE, self._state.dumps(state), max_age=STATE_TTL_S, path=STATE_PATH,
                            secure=self.secure, httponly=True, samesite="lax")

    def state_matches(self, request: Request, state: str) -> bool:
        try:
            sent = self._state.loads(request.cookies.get(STATE_COOKIE) or "", max_age=STATE_TTL_S)
        except BadSignature:
            return False
        return isinstance(sent, str) and bool(state) and hmac.compare_digest(sent.encode(), state.encode())

    def clear_state(self, response: Response) -> None:
        response.delete_cookie(STATE_COOKIE, path=STATE_PATH, secure=self.secure, httponly=True, samesite="lax")

    def set_me(self, response: Response, session_id: str) -> None:
        value = self._me.dumps({"sid": session_id, "csrf": secrets.token_urlsafe(32)})
        response.set_cookie(ME_COOKIE, value, max_age=self.ttl_s, path=ME_PATH, secure=self.secure,
                            httponly=True, samesite="lax")

    def me(self, request: Request) -> MeCookie | None:
        try:
            data = self._me.loads(request.cookies.get(ME_COOKIE) or "", max_age=self.ttl_s)
        except BadSignature:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("sid"), str) or not isinstance(data.get("csrf"), str):
            return None
        return MeCookie(session_id=data["sid"], csrf=data["csrf"])

    def clear_me(self, response: Response) -> None:
        response.delete_cookie(ME_COOKIE, path=ME_PATH, secure=self.secure, httponly=True, samesite="lax")


def cookies_for(services: Any) -> SsoCookies:
    return SsoCookies(services.secret_key, ttl_s=services.settings.admin_token_ttl_s,
                      secure=services.settings.cookie_secure)


def security_headers(response: Response, nonce: str | None = None) -> None:
    nonce = nonce or secrets.token_urlsafe(16)
    response.headers["cache-control"] = "no-store"
    response.headers["x-content-type-options"] = "nosniff"
    response.headers["referrer-policy"] = "same-origin"
    response.headers["x-frame-options"] = "DENY"
    response.headers["content-security-policy"] = (
        "default-src 'self'; "
        f"script-src 'nonce-{nonce}' https://cdn.jsdelivr.net; "
        "style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'")


def render_page(request: Request, template: str, context: Mapping[str, Any] | None = None, *,
                csrf: str = "", status_code: int = 200) -> HTMLResponse:
    """A full page; ``username`` stays unset so the dashboard's admin header is not shown."""
    nonce = secrets.token_urlsafe(16)
    values = {"request": request, "csrf_token": csrf, "nonce": nonce, "path": request.url.path, **(context or {})}
    response = HTMLResponse(environment().get_template(template).render(values), status_code=status_code)
    security_headers(response, nonce)
    return response
