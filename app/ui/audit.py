"""``/ui/audit``: the audit log (newest first, 50 a page), filtered by actor, action, target and time
(the same filters and name lookup as ``GET /admin/audit``: app/admin/audit.py); htmx requests get
``audit/_rows.html``. Targets show as names (a user's name; a key's prefix and its owner's name).
``/ui/audit.csv`` downloads the filtered log."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Request
from starlette.responses import Response

from app.admin.audit import audit_filter, public_entry, read_page, to_csv
from app.deps import ServicesDep
from app.store.audit import FAILED_LOGIN
from app.ui.errors import UiRoute
from app.ui.forms import page_number
from app.ui.render import render
from app.ui.session import AdminSession

router = APIRouter(route_class=UiRoute)

PAGE_SIZE = 50
CSV_MAX_ROWS = 10_000
KNOWN_ACTIONS = ("admin.login", FAILED_LOGIN, "admin.logout", "user.create", "user.status", "user.limits",
                 "key.create", "key.rotate", "key.revoke", "key.policy", "key.limits", "key.bedrock_key.set",
                 "key.bedrock_key.delete", "model_map.set", "model_map.delete", "user.update", "user.delete",
                 "user.import", "key.expiry", "pricing.set", "pricing.delete")
FILTER_FIELDS = ("actor", "action", "target", "from", "to")


@router.get("/audit")
async def audit_log(request: Request, services: ServicesDep, _: AdminSession, page: str = "1") -> Response:
    number = page_number(page)
    where = audit_filter(request.query_params)
    result = await read_page(services.audit, services.users, services.access_keys, where,
                             limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE)
    filters = {name: (request.query_params.get(name) or "").strip() for name in FILTER_FIELDS}
    query = urlencode({k: v for k, v in filters.items() if v})
    return render(request, "audit/index.html",
                  {"entries": result.entries, "names": result.names, "filters": filters, "page": number,
                   "has_next": result.has_more, "known_actions": KNOWN_ACTIONS, "filter_query": query},
                  partial="audit/_rows.html")


@router.get("/audit.csv")
async def audit_csv(request: Request, services: ServicesDep, _: AdminSession) -> Response:
    """The filtered log as CSV (newest first, at most CSV_MAX_ROWS rows; the API pages past that)."""
    result = await read_page(services.audit, services.users, services.access_keys, audit_filter(request.query_params),
                             limit=CSV_MAX_ROWS, offset=0)
    return Response(to_csv(public_entry(e, result.names) for e in result.entries), media_type="text/csv; charset=utf-8",
                    headers={"content-disposition": 'attachment; filename="audit.csv"', "cache-control": "no-store"})
