"""``/ui/me``: a developer's own usage, opened with their access key instead of the admin login.

The key is pasted into a form and POSTed (never in a URL: URLs end up in logs and history); the
page is not cached (``no-store``) and never echoes the key back. With htmx only the report is
swapped, so the key stays in the field for the next range; without JavaScript the form comes back
empty. The answer is what ``GET /v1/usage/me`` gives, twice: this key (``scope=key``) and all of
the developer's keys (``scope=user``, which includes keys rotated away), plus limits and quota use.
Any bad key gets the same "unknown, revoked or expired" message (as the proxy answers).
"""

from __future__ import annotations

import functools
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from app.auth.access import Principal
from app.deps import ServicesDep
from app.errors import AuthenticationFailed
from app.services import Services
from app.ui.errors import UiRoute
from app.ui.forms import RANGES, usage_query
from app.ui.render import render
from app.ui.report import charts, fallback_share, remembered_zone
from app.ui.session import CsrfSession
from app.usage import query

router = APIRouter(route_class=UiRoute)

BAD_KEY = "That access key is unknown, revoked or expired. Paste the whole key (sk-ccp-…)."


async def me_context(services: Services, principal: Principal, params: dict[str, str]) -> dict[str, Any]:
    """Usage of the key and of the user over the chosen range, the limits and their current use
    (two usage queries and the quota status)."""
    from datetime import UTC, datetime

    usage = usage_query(params, datetime.now(UTC))
    report = functools.partial(query.usage_report, services.store.db, start=usage.start, end=usage.end,
                               granularity=usage.granularity, tz=usage.tz, retention=services.usage.retention)
    key_report = await report(access_key_id=principal.access_key_id)
    user_report = await report(user_id=principal.user_id)
    quota = await services.quotas.status(principal) if services.quotas is not None else {}
    user = await services.users.get(principal.user_id) or {}
    return {"usage": usage, "principal": principal, "user_name": user.get("name"),
            "scopes": [("This key", key_report), ("All your keys (scope=user)", user_report)],
            "charts": charts(user_report), "share": fallback_share(user_report["totals"]),
            "limits": {"access_key": principal.key_limits, "user": principal.user_limits}, "quota": quota,
            "ranges": RANGES}


@router.get("/me")
async def me_page(request: Request) -> Response:
    return render(request, "me/key_usage.html", {"ranges": RANGES, "range": "24h",
                                             "tz": remembered_zone(request) or "UTC"})


@router.post("/me")
async def me_report(request: Request, services: ServicesDep, _: CsrfSession,
                    key: Annotated[str, Form()] = "", range: Annotated[str, Form()] = "24h",
                    tz: Annotated[str, Form()] = "UTC") -> Response:
    form = {"ranges": RANGES, "range": range, "tz": tz}
    try:
        principal = await services.resolver.resolve(key.strip() or None)
    except AuthenticationFailed:
        return render(request, "me/key_usage.html", {**form, "error": BAD_KEY}, partial="me/_report.html",
                      status_code=401)
    context = await me_context(services, principal, {"range": range, "tz": tz})
    return render(request, "me/key_usage.html", {**form, **context}, partial="me/_report.html")
