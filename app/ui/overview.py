"""``/ui`` and ``/ui/usage``: usage of everyone (totals, charts, providers, models, top users).
htmx requests (the range form) get ``usage/_report.html`` (plus the controls, out of band); the
time zone is remembered in a cookie (app/ui/report.py)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from app.deps import ServicesDep
from app.ui.errors import UiRoute
from app.ui.render import is_htmx, render
from app.ui.report import page_usage_query, remember_zone, usage_view
from app.ui.session import AdminSession

router = APIRouter(route_class=UiRoute)


@router.get("")
@router.get("/")
@router.get("/usage")
async def overview(request: Request, services: ServicesDep, _: AdminSession) -> Response:
    usage = page_usage_query(request)
    context = await usage_view(services, usage, with_top_users=True, oob_controls=is_htmx(request))
    response = render(request, "usage/index.html", {**context, "form_action": request.url.path},
                      partial="usage/_report.html")
    remember_zone(request, response, usage)
    return response
