"""``/ui/audit``: the audit log (newest first, 50 a page, optional ``action`` filter); htmx requests
get ``audit/_rows.html``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from app.deps import ServicesDep
from app.ui.errors import UiRoute
from app.ui.forms import page_number
from app.ui.render import render
from app.ui.session import AdminSession

router = APIRouter(route_class=UiRoute)

PAGE_SIZE = 50
KNOWN_ACTIONS = ("admin.login", "admin.logout", "user.create", "user.limits", "key.create", "key.rotate",
                 "key.revoke", "key.policy", "key.limits", "key.bedrock_key.set", "key.bedrock_key.delete")


@router.get("/audit")
async def audit_log(request: Request, services: ServicesDep, _: AdminSession, action: str = "",
                    page: str = "1") -> Response:
    number = page_number(page)
    # one extra row tells whether there is a next page
    rows = await services.audit.list(limit=PAGE_SIZE + 1, skip=(number - 1) * PAGE_SIZE,
                                     action=action.strip() or None)
    return render(request, "audit/index.html",
                  {"entries": rows[:PAGE_SIZE], "action": action, "page": number, "has_next": len(rows) > PAGE_SIZE,
                   "known_actions": KNOWN_ACTIONS}, partial="audit/_rows.html")
