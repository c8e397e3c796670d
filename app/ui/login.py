"""``/ui/login`` and ``/ui/logout``: the admin account of app/auth/admin.py, a session cookie that
names a server-side admin session (logout deletes it), and an ``admin.login`` audit entry
(``details.via = "ui"``) like the JSON API's."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from starlette.responses import RedirectResponse, Response

from app.admin.service import Actor
from app.deps import ServicesDep
from app.services import Services
from app.errors import AuthenticationFailed, RateLimited, ServiceUnavailable
from app.ui.errors import UiRoute
from app.ui.render import apply_headers, is_htmx, render
from app.ui.session import CsrfFailed, CsrfSession, check_csrf, current_session, missing_cookie_reason, new_session

router = APIRouter(route_class=UiRoute)


def safe_next(value: str | None) -> str:
    """Only local dashboard paths: never ``//host`` or ``https://...`` (open redirect)."""
    if value and value.startswith("/ui") and not value.startswith("//") and "\\" not in value:
        return value
    return "/ui"


def _go(request: Request, location: str) -> Response:
    if is_htmx(request):
        return Response(status_code=200, headers={"hx-redirect": location})
    return RedirectResponse(location, status_code=303)


def cookie_warning(request: Request, services: Services) -> str | None:
    """Said before the first attempt when the configuration makes the cookie unusable here."""
    if services.settings.cookie_secure is True and request.url.scheme != "https":
        return missing_cookie_reason(True, request.url.scheme, request.url.netloc)
    return None


@router.get("/login")
async def login_page(request: Request, services: ServicesDep, next: str | None = None) -> Response:
    return render(request, "login.html", {"next": safe_next(next), "login_name": "",
                                          "warning": cookie_warning(request, services)})


@router.post("/login")
async def login(request: Request, services: ServicesDep,
                username: Annotated[str, Form()] = "", password: Annotated[str, Form()] = "",
                next: Annotated[str, Form()] = "/ui") -> Response:
    try:
        await check_csrf(request)
    except CsrfFailed as exc:  # the login form again, with the reason (cookie missing or stale form)
        request.state.ui_session = new_session()
        return render(request, "login.html", {"next": safe_next(next), "login_name": username,
                                              "error": exc.message}, status_code=exc.status_code)
    ip = request.client.host if request.client else None
    try:
        grant = await services.admin.login(Actor(username, ip), password, via="ui")
    except (AuthenticationFailed, RateLimited, ServiceUnavailable) as exc:  # audited by the service
        return render(request, "login.html", {"next": safe_next(next), "login_name": username,
                                              "error": exc.message},
                      status_code=exc.status_code, headers=exc.headers)
    # New CSRF token and session id on login: no session fixation.
    request.state.ui_session = new_session(username, session_id=grant.session_id)
    response = _go(request, safe_next(next))
    apply_headers(request, response)
    return response


@router.post("/logout")
async def logout(request: Request, services: ServicesDep, _: CsrfSession) -> Response:
    session = current_session(request)
    # Server-side: a copy of this cookie stops working too (not only this browser's).
    ip = request.client.host if request.client else None
    await services.admin.logout(Actor(session.username, ip) if session.username else None, session.session_id,
                                via="ui")
    request.state.ui_session = new_session()
    response = _go(request, "/ui/login")
    apply_headers(request, response)
    return response
