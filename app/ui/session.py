"""Dashboard session cookie and CSRF check.

The session is one cookie, ``ccp_session``: an ``itsdangerous`` timed signature (key
``services.secret_key``, salt ``ui-session``) over ``{"csrf": <random>, "sub": <admin username> | null,
"sid": <admin session id> | null}``. It is ``HttpOnly``, ``SameSite=Lax``, ``Path=/ui``, and ``Secure``
when the request came over HTTPS (``request.url.scheme``: uvicorn rewrites it from
``X-Forwarded-Proto`` only for the peers in ``--forwarded-allow-ips``; we never read that header
ourselves), or always / never when ``settings.cookie_secure`` is true / false. It expires with the
signature after ``settings.admin_token_ttl_s`` seconds. An anonymous session (``sub`` null) carries the CSRF token of
the login form; logging in issues a new session with a new token (no fixation).

A logged-in cookie is accepted only while its ``sid`` names a live admin session in the store
(app/auth/admin.py; the answer is cached in process for 1 s): logging out deletes that session, so
a copied cookie stops working at once on this replica and within a second on the others; a changed
admin password ends every session.

A browser that did not send the cookie back (blocked cookies; a ``Secure`` cookie on plain HTTP)
gets :class:`CookieMissing`, whose message says so, instead of the CSRF message.

CSRF: every POST must carry the session's token in the ``X-CSRF-Token`` header (htmx, from
``hx-headers`` on ``<body>``) or the ``csrf_token`` form field (plain forms). ``SameSite=Lax`` already
keeps the cookie off cross-site POSTs; the token also covers same-site attackers and old browsers.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.responses import Response

from app.errors import PermissionDenied
from app.services import Services

SESSION_COOKIE = "ccp_session"
SESSION_SALT = "ui-session"
COOKIE_PATH = "/ui"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class LoginRequired(Exception):
    """No valid admin session: the route wrapper redirects to ``/ui/login``."""


class CsrfFailed(PermissionDenied):
    """403: a state-changing request without the session's CSRF token."""

    def __init__(self) -> None:
        super().__init__("This form has expired or did not come from this dashboard (missing or wrong "
                         "CSRF token). Reload the page and try again.")


class CookieMissing(CsrfFailed):
    """403: a POST without any session cookie: the browser did not keep or send it back."""

    def __init__(self, reason: str) -> None:
        PermissionDenied.__init__(self, reason)


def cookie_is_secure(setting: bool | None, scheme: str) -> bool:
    """The cookie's ``Secure`` flag: ``setting`` (``PROXY_COOKIE_SECURE``) when set, else whether the
    request's scheme is ``https``."""
    return setting if setting is not None else scheme == "https"


def missing_cookie_reason(setting: bool | None, scheme: str, host: str) -> str:
    """Why a browser may not have sent the session cookie back, for the page (one paragraph)."""
    if setting is True and scheme != "https":
        return (f"Your browser did not send the dashboard's session cookie back. This page is served over "
                f"plain HTTP ({host}), but PROXY_COOKIE_SECURE=true marks the cookie Secure, and browsers "
                "keep Secure cookies only over HTTPS (or on localhost). Use HTTPS, or unset "
                "PROXY_COOKIE_SECURE (the flag then follows the request's scheme); behind a TLS load "
                "balancer, start the proxy with --proxy-headers --forwarded-allow-ips=<its address>.")
    return ("Your browser did not send the dashboard's session cookie back, so this form cannot be "
            "checked. Allow cookies for this site (the cookie is ccp_session, path /ui), then reload the "
            "page and try again.")


@dataclass(frozen=True)
class UiSession:
    csrf: str
    username: str | None = None
    session_id: str | None = None  # the admin session (app/auth/admin.py) of a logged-in cookie
    new: bool = False  # not yet in a cookie: the response must set it


def new_session(username: str | None = None, session_id: str | None = None) -> UiSession:
    return UiSession(csrf=secrets.token_urlsafe(32), username=username, session_id=session_id, new=True)


class SessionCodec:
    """Signs and reads the session cookie."""

    def __init__(self, secret_key: bytes, *, ttl_s: int, secure: bool | None = None) -> None:
        self._serializer = URLSafeTimedSerializer(secret_key, salt=SESSION_SALT)
        self.ttl_s, self.secure = ttl_s, secure

    def load(self, cookie: str | None) -> UiSession | None:
        """The session in ``cookie``, or None when absent, tampered with or older than ``ttl_s``."""
        if not cookie:
            return None
        try:
            data = self._serializer.loads(cookie, max_age=self.ttl_s)
        except BadSignature:  # includes SignatureExpired
            return None
        if not isinstance(data, dict) or not isinstance(data.get("csrf"), str):
            return None
        username, session_id = data.get("sub"), data.get("sid")
        return UiSession(csrf=data["csrf"], username=username if isinstance(username, str) else None,
                         session_id=session_id if isinstance(session_id, str) else None)

    def store(self, response: Response, session: UiSession, *, scheme: str = "https") -> None:
        """Set the cookie; ``scheme`` is the request's (``Secure`` follows it unless ``secure`` is set)."""
        value = self._serializer.dumps({"csrf": session.csrf, "sub": session.username, "sid": session.session_id})
        response.set_cookie(SESSION_COOKIE, value,
                            max_age=self.ttl_s, path=COOKIE_PATH, secure=cookie_is_secure(self.secure, scheme),
                            httponly=True, samesite="lax")

    def clear(self, response: Response, *, scheme: str = "https") -> None:
        response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH, secure=cookie_is_secure(self.secure, scheme),
                               httponly=True, samesite="lax")


def session_codec(services: Services) -> SessionCodec:
    return SessionCodec(services.secret_key, ttl_s=services.settings.admin_token_ttl_s,
                        secure=services.settings.cookie_secure)


def current_session(request: Request) -> UiSession:
    """The request's session (a fresh anonymous one when there is none); kept on ``request.state``
    so that :func:`app.ui.render.render` can set the cookie and the CSRF token."""
    session = getattr(request.state, "ui_session", None)
    if session is None:
        session = session_codec(request.app.state.services).load(request.cookies.get(SESSION_COOKIE))
        session = session or new_session()
        request.state.ui_session = session
    return session


async def check_csrf(request: Request) -> UiSession:
    """Dependency for unsafe methods: raises CsrfFailed (403) unless the header or form token
    equals the session's. Returns the session."""
    session = current_session(request)
    if request.method in SAFE_METHODS:
        return session
    sent = request.headers.get(CSRF_HEADER)
    if not sent and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")):
        value = (await request.form()).get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if session.new and SESSION_COOKIE not in request.cookies:
        raise CookieMissing(missing_cookie_reason(request.app.state.services.settings.cookie_secure,
                                                  request.url.scheme, request.url.netloc))
    if session.new or not sent or not hmac.compare_digest(sent.encode(), session.csrf.encode()):
        raise CsrfFailed()
    return session


async def require_admin_session(request: Request) -> UiSession:
    """Dependency: a logged-in admin session whose server-side session is live, else LoginRequired
    (redirect to the login page). One store call at most (cached 1 s); ServiceUnavailable (503 page)
    when the store fails. The JSON API's bearer-token check is app/deps.py's ``require_admin_token``."""
    session = current_session(request)
    auth = request.app.state.services.admin_auth
    sso = getattr(request.app.state.services, "sso", None)
    if sso is not None and session.username and session.username.startswith("oidc:"):
        # A single sign-on admin (app/sso): the session must be live and an admin's.
        sso_session = await sso.sessions.check(session.session_id)
        if sso_session is None or not sso_session.admin or sso_session.actor != session.username:
            raise LoginRequired()
        return session
    if session.username is None or session.username != auth.username or session.session_id is None:
        raise LoginRequired()
    if not await auth.session_active(session.session_id):
        raise LoginRequired()
    return session


async def require_admin_post(request: Request) -> UiSession:
    """Dependency for state-changing admin routes: logged in first (redirect), then CSRF (403)."""
    await require_admin_session(request)
    return await check_csrf(request)


AdminSession = Annotated[UiSession, Depends(require_admin_session)]
AdminPost = Annotated[UiSession, Depends(require_admin_post)]
CsrfSession = Annotated[UiSession, Depends(check_csrf)]
