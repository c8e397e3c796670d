"""``/me``: a developer's own page, after signing in through the IdP (app/sso/routes.py).

- ``GET /me``: profile (e-mail, IdP and proxy groups), own access keys, own usage and spend
  (today / this week / this month against the user's limits, and by model), Claude Code setup.
  Signed out: a page whose button starts the sign-in (``/auth/oidc/login?next=/me``).
- ``POST /me/keys`` (``name``), ``POST /me/keys/{key_id}/rotate``, ``POST /me/keys/{key_id}/revoke``:
  through AdminService, so each is audited with the person (``oidc:<sub> (<email>)``) as actor.
  Only the user's own keys (others: 404); at most ``self_service_max_keys`` active keys; all off
  (403) when ``self_service_enabled`` is false. A new key is shown once, in that response only.
- ``POST /me/logout``: ends the SSO session (the dashboard's too, it is the same one).
Every POST needs the ``csrf_token`` form field of the ``ccp_me`` cookie. Errors are pages.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.responses import RedirectResponse, Response

from app.admin.service import Actor, IssuedKey, public_key
from app.errors import ApiError, InvalidRequest, NotFound, PermissionDenied, ProxyError
from app.sso.pages import MeCookie, cookies_for, render_page
from app.sso.sessions import SsoSession
from app.sso.setup import setup_snippets
from app.sso.spend import my_spend

log = logging.getLogger(__name__)


class SignInNeeded(Exception):
    """No live SSO session: the page with the sign-in button."""


class MeRoute(APIRoute):
    """Errors become pages, as the dashboard's UiRoute does."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def me_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInNeeded:
                return _signin_page(request)
            except ProxyError as exc:
                return _error(request, exc.message, exc.status_code)
            except RequestValidationError:
                return _error(request, "invalid form input", 400)
            except Exception as exc:
                log.error("/me error on %s: %s", request.url.path, type(exc).__name__, exc_info=exc)
                return _error(request, ApiError("Internal error; the details are in the server log.").message, 500)

        return me_handler


router = APIRouter(include_in_schema=False, route_class=MeRoute)


def _signin_page(request: Request) -> Response:
    configured = request.app.state.services.sso is not None
    return render_page(request, "me/signin.html", {"configured": configured}, status_code=200 if configured else 404)


def _error(request: Request, message: str, status_code: int) -> Response:
    return render_page(request, "sso/error.html", {"error": message, "status_code": status_code, "next": "/me"},
                       status_code=status_code)


async def _session(request: Request) -> tuple[SsoSession, MeCookie]:
    services = request.app.state.services
    if services.sso is None:
        raise SignInNeeded()
    cookie = cookies_for(services).me(request)
    session = await services.sso.sessions.check(cookie.session_id if cookie else None)
    if session is None or cookie is None:
        raise SignInNeeded()
    return session, cookie


async def _post_session(request: Request, csrf_token: str) -> tuple[SsoSession, MeCookie]:
    session, cookie = await _session(request)
    if not csrf_token or not hmac.compare_digest(csrf_token.encode(), cookie.csrf.encode()):
        raise PermissionDenied("This form has expired or did not come from this page (CSRF token). Reload and retry.")
    return session, cookie


def _actor(request: Request, session: SsoSession) -> Actor:
    return Actor(username=session.actor, ip=request.client.host if request.client else None)


def _base_url(request: Request) -> str:
    return request.app.state.services.settings.public_base_url or str(request.base_url).rstrip("/")


def _active(keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [k for k in keys if k.get("status") == "active" and not k.get("expires_at")]


async def _page(request: Request, session: SsoSession, cookie: MeCookie, *, new_key: IssuedKey | None = None,
                notice: str | None = None) -> Response:
    services = request.app.state.services
    settings = services.settings
    user = await services.admin.get_user(session.user_id)
    keys = await services.access_keys.list_for_user(session.user_id, limit=100)
    spend = await my_spend(services.store.db, session.user_id, limits=user.get("limits"),
                           retention=getattr(services.usage, "retention", None))
    return render_page(request, "me/index.html", {
        "user": user, "session": session, "keys": [public_key(k) for k in keys],
        "active_count": len(_active(keys)), "max_keys": settings.self_service_max_keys,
        "self_service": settings.self_service_enabled, "new_key": new_key, "notice": notice,
        "spend": spend, "setup": setup_snippets(_base_url(request), new_key.key if new_key else None),
    }, csrf=cookie.csrf)


async def _own_key(request: Request, session: SsoSession, key_id: str) -> dict[str, Any]:
    doc = await request.app.state.services.access_keys.get(key_id)
    if doc is None or doc.get("user_id") != session.user_id:
        raise NotFound(f"access key {key_id!r} not found")
    return doc


def _self_service_on(request: Request) -> None:
    if not request.app.state.services.settings.self_service_enabled:
        raise PermissionDenied("Self-service keys are turned off on this proxy; ask an admin for a key.")


@router.get("/me")
async def me(request: Request) -> Response:
    session, cookie = await _session(request)
    return await _page(request, session, cookie)


@router.post("/me/keys")
async def create_key(request: Request, csrf_token: Annotated[str, Form()] = "",
                     name: Annotated[str, Form()] = "") -> Response:
    session, cookie = await _post_session(request, csrf_token)
    _self_service_on(request)
    services = request.app.state.services
    limit = services.settings.self_service_max_keys
    if len(_active(await services.access_keys.list_for_user(session.user_id, limit=100))) >= limit:
        raise InvalidRequest(f"You have {limit} active key(s), the most this proxy allows per person. "
                             "Revoke one first.")
    issued = await services.admin.create_key(_actor(request, session), session.user_id,
                                             name=name.strip()[:100] or None)
    return await _page(request, session, cookie, new_key=issued, notice="Key created.")


@router.post("/me/keys/{key_id}/rotate")
async def rotate_key(request: Request, key_id: str, csrf_token: Annotated[str, Form()] = "") -> Response:
    session, cookie = await _post_session(request, csrf_token)
    _self_service_on(request)
    await _own_key(request, session, key_id)
    issued = await request.app.state.services.admin.rotate_key(_actor(request, session), key_id)
    return await _page(request, session, cookie, new_key=issued, notice="Key rotated; the old one stops working.")


@router.post("/me/keys/{key_id}/revoke")
async def revoke_key(request: Request, key_id: str, csrf_token: Annotated[str, Form()] = "") -> Response:
    session, cookie = await _post_session(request, csrf_token)
    _self_service_on(request)
    await _own_key(request, session, key_id)
    await request.app.state.services.admin.revoke_key(_actor(request, session), key_id)
    return await _page(request, session, cookie, notice="Key revoked.")


@router.post("/me/logout")
async def logout(request: Request, csrf_token: Annotated[str, Form()] = "") -> Response:
    session, _ = await _post_session(request, csrf_token)
    services = request.app.state.services
    await services.sso.logout(session, ip=request.client.host if request.client else None, via="me")
    response = RedirectResponse("/me", status_code=303)
    cookies_for(services).clear_me(response)
    return response
