"""``/ui/users`` (list, search, create) and ``/ui/users/{id}`` (usage, keys, limits).

htmx requests get fragments: the list's rows (``users/_rows.html``), the user's usage report
(``usage/_report.html``, from the range form) and the limits form (``users/_limits.html``).
Plain forms get a 303 back to the page (``?notice=`` names a fixed message).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from starlette.responses import RedirectResponse, Response

from app.admin.service import FALLBACK_POLICIES, Actor, IssuedKey
from app.admin.snippets import claude_code_snippets
from app.deps import ServicesDep
from app.services import Services
from app.store.users import UserDoc
from app.ui.errors import UiRoute
from app.ui.forms import USER_STATUSES, limits_patch, user_status
from app.ui.render import is_htmx, render
from app.ui.report import page_usage_query, remember_zone, usage_view
from app.ui.session import AdminPost, AdminSession, UiSession
from app.usage.limits import LIMITS

router = APIRouter(route_class=UiRoute)

NOTICES = {
    "user-created": "User created.", "key-revoked": "Access key revoked.", "policy-set": "Fallback policy saved.",
    "limits-set": "Limits saved.", "bedrock-set": "Bedrock API key registered.",
    "bedrock-removed": "Bedrock API key removed.", "user-disabled": "User disabled: their keys are refused.",
    "user-active": "User enabled.", "profile-set": "Name and e-mail saved.",
    "user-deleted": "User deleted: personal data removed, keys revoked; their usage stays under the pseudonym.",
    "expiry-set": "Key expiry saved.", "expiry-cleared": "Key expiry removed.",
}


def actor(request: Request, session: UiSession) -> Actor:
    return Actor(username=session.username or "?", ip=request.client.host if request.client else None)


def base_url(request: Request, services: Services) -> str:
    """How Claude Code reaches this proxy, for the snippets: ``PROXY_PUBLIC_BASE_URL`` or this request's."""
    return (services.settings.public_base_url or str(request.base_url)).rstrip("/")


async def detail_context(request: Request, services: Services, user: UserDoc, *,
                         new_key: IssuedKey | None = None, notice: str | None = None) -> dict[str, Any]:
    """Everything ``users/detail.html`` shows (two store calls: keys, usage report)."""
    usage = page_usage_query(request)
    keys = await services.access_keys.list_for_user(user["_id"])
    return {"user": user, **(await usage_view(services, usage, user_id=user["_id"])),
            **keys_context(request, services, user, keys, new_key=new_key, notice=notice),
            "form_action": f"/ui/users/{user['_id']}"}


def keys_context(request: Request, services: Services, user: UserDoc, keys: list[dict[str, Any]], *,
                 new_key: IssuedKey | None = None, notice: str | None = None) -> dict[str, Any]:
    url = base_url(request, services)
    snippets = None
    if new_key is not None:
        policy = new_key.doc.get("fallback_policy") or services.settings.default_fallback_policy
        snippets = claude_code_snippets(url, new_key.key, policy)
    return {"user": user, "keys": keys, "new_key": new_key, "snippets": snippets, "notice": notice, "base_url": url,
            "policies": FALLBACK_POLICIES, "default_policy": services.settings.default_fallback_policy,
            "limit_names": list(LIMITS)}


@router.get("/users")
async def list_users(request: Request, services: ServicesDep, _: AdminSession, search: str = "",
                     status: str = "") -> Response:
    users = await services.users.list(search=search.strip() or None, status=user_status(status), limit=200)
    return render(request, "users/index.html", {"users": users, "search": search, "status": status,
                                                "statuses": USER_STATUSES, "notice": NOTICES.get(
                                                    request.query_params.get("notice", ""))},
                  partial="users/_rows.html")


@router.post("/users")
async def create_user(request: Request, services: ServicesDep, session: AdminPost,
                      name: Annotated[str, Form()] = "", email: Annotated[str, Form()] = "") -> Response:
    user = await services.admin.create_user(actor(request, session), name, email)
    if not is_htmx(request):
        return RedirectResponse(f"/ui/users/{user['_id']}?notice=user-created", status_code=303)
    users = await services.users.list(limit=200)
    return render(request, "users/_rows.html", {"users": users, "notice": f"User {user['name']} created.",
                                                "created_id": user["_id"]}, force_partial=True)


@router.get("/users/{user_id}")
async def user_detail(request: Request, user_id: str, services: ServicesDep, _: AdminSession) -> Response:
    user = await services.admin.get_user(user_id)
    if is_htmx(request):  # the range form: only the usage report (and its controls, out of band)
        usage = page_usage_query(request)
        response = render(request, "usage/_report.html",
                          await usage_view(services, usage, user_id=user_id, oob_controls=True), force_partial=True)
        remember_zone(request, response, usage)
        return response
    notice = NOTICES.get(request.query_params.get("notice", ""))
    return render(request, "users/detail.html", await detail_context(request, services, user, notice=notice))


@router.post("/users/{user_id}/limits")
async def set_user_limits(request: Request, user_id: str, services: ServicesDep, session: AdminPost) -> Response:
    user = await services.admin.set_limits(actor(request, session), "user", user_id,
                                           limits_patch(await request.form()))
    if not is_htmx(request):
        return RedirectResponse(f"/ui/users/{user_id}?notice=limits-set#limits", status_code=303)
    return render(request, "users/_limits.html", {"user": user, "limit_names": list(LIMITS),
                                                  "notice": NOTICES["limits-set"]}, force_partial=True)


@router.post("/users/{user_id}/status")
async def set_user_status(request: Request, user_id: str, services: ServicesDep, session: AdminPost,
                          status: Annotated[str, Form()] = "") -> Response:
    """Disable or enable a user (AdminService.set_user_status); back to the user's page."""
    user = await services.admin.set_user_status(actor(request, session), user_id, status)
    return RedirectResponse(f"/ui/users/{user_id}?notice=user-{user['status']}", status_code=303)
