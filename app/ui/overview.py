"""``/ui`` and ``/ui/usage``: usage of everyone (totals, charts, providers, models, top users).
htmx requests (the range form) get ``usage/_report.html``."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from starlette.responses import Response

from app.deps import ServicesDep
from app.ui.errors import UiRoute
from app.ui.forms import RANGES, ZONES, usage_query
from app.ui.render import render
from app.ui.report import usage_view
from app.ui.session import AdminSession
from app.usage.buckets import GRANULARITIES

router = APIRouter(route_class=UiRoute)


@router.get("")
@router.get("/")
@router.get("/usage")
async def overview(request: Request, services: ServicesDep, _: AdminSession) -> Response:
    usage = usage_query(request.query_params, datetime.now(UTC))
    context = await usage_view(services, usage, with_top_users=True)
    return render(request, "usage/index.html",
                  {**context, "ranges": RANGES, "zones": ZONES, "granularities": GRANULARITIES,
                   "form_action": request.url.path},
                  partial="usage/_report.html")
