"""Dashboard pages for a user's lifecycle and attribution (issue 14 section 4): edit name and e-mail,
delete (usage kept under a pseudonym), import users from CSV, a key's expiry, the user's top Claude
Code sessions, and the usage CSV download. Plain forms answer with a 303 (or, for the import, its
result page); every one works without JavaScript. Services: app/admin/lifecycle.py, app/usage/query.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request, UploadFile
from starlette.responses import RedirectResponse, Response

from app.admin.user_import import IMPORT_MAX_BYTES, parse_import
from app.deps import ServicesDep
from app.errors import InvalidRequest
from app.ui.errors import UiRoute
from app.ui.render import render
from app.ui.session import AdminPost, AdminSession
from app.ui.users import actor
from app.usage import query
from app.usage.export import export_usage_csv

router = APIRouter(route_class=UiRoute)
Text = Annotated[str, Form()]
SESSION_RANGES = {"24h": 1, "7d": 7, "30d": 30}


@router.post("/users/import")
async def import_users(request: Request, services: ServicesDep, session: AdminPost, csv_text: Text = "",
                       csv_file: UploadFile | None = None, dry_run: Text = "") -> Response:
    """A CSV file or pasted text (header ``name``, optional ``email``); the result page lists what
    was created and skipped."""
    text = csv_text
    if csv_file is not None and csv_file.filename:
        raw = await csv_file.read(IMPORT_MAX_BYTES + 1)
        if len(raw) > IMPORT_MAX_BYTES:
            raise InvalidRequest(f"CSV: larger than {IMPORT_MAX_BYTES // 1_000_000} MB; split the file")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidRequest("CSV: not UTF-8 text") from None
    if not text.strip():
        raise InvalidRequest("CSV: choose a file or paste the rows (header: name,email)")
    result = await services.lifecycle.import_users(actor(request, session), parse_import(text),
                                                   dry_run=dry_run == "yes")
    return render(request, "users/import.html", {"result": result})


@router.post("/users/{user_id}/profile")
async def edit_profile(request: Request, user_id: str, services: ServicesDep, session: AdminPost,
                       name: Text = "", email: Text = "") -> Response:
    await services.lifecycle.update_user(actor(request, session), user_id, name=name, email=email, email_set=True)
    return RedirectResponse(f"/ui/users/{user_id}?notice=profile-set", status_code=303)


@router.post("/users/{user_id}/delete")
async def delete_user(request: Request, user_id: str, services: ServicesDep, session: AdminPost,
                      confirm: Text = "") -> Response:
    if confirm != "yes":
        raise InvalidRequest("confirm: tick the box to delete this user")
    await services.lifecycle.delete_user(actor(request, session), user_id)
    return RedirectResponse(f"/ui/users/{user_id}?notice=user-deleted", status_code=303)


@router.post("/keys/{key_id}/expiry")
async def set_key_expiry(request: Request, key_id: str, services: ServicesDep, session: AdminPost,
                         expires_at: Text = "") -> Response:
    """``expires_at``: a ``datetime-local`` value or a date, read as UTC; empty clears it."""
    when = None
    if expires_at.strip():
        when = query.parse_time(expires_at, UTC, name="expires_at")
    doc = await services.lifecycle.set_key_expiry(actor(request, session), key_id, when)
    notice = "expiry-set" if when else "expiry-cleared"
    return RedirectResponse(f"/ui/users/{doc['user_id']}?notice={notice}#keys", status_code=303)


@router.get("/users/{user_id}/sessions")
async def user_sessions(request: Request, user_id: str, services: ServicesDep, _: AdminSession,
                        range: str = "7d") -> Response:
    """Top sessions by cost (raw events); a fragment for htmx (the detail page loads it), else a page."""
    user = await services.admin.get_user(user_id)
    days = SESSION_RANGES.get(range, 7)
    now = datetime.now(UTC)
    report = await query.top_sessions(services.store.db, user_id, start=now - timedelta(days=days), end=now, limit=10)
    return render(request, "users/sessions.html", {"user": user, "report": report, "range": range,
                                                   "ranges": SESSION_RANGES},
                  partial="users/_sessions.html")


@router.get("/usage/export.csv")
async def usage_csv(services: ServicesDep, _: AdminSession, from_: str = Query("", alias="from"),
                    to: str = "") -> Response:
    """The usage CSV (``/admin/usage/export.csv``) for the dashboard's download link."""
    text, first, stop = await export_usage_csv(services.store.db, services.users, query.parse_time(from_ or None),
                                               query.parse_time(to or None, name="to"))
    return Response(text, media_type="text/csv; charset=utf-8", headers={
        "content-disposition": f'attachment; filename="usage-{first:%Y%m%d}-{stop:%Y%m%d}.csv"',
        "cache-control": "no-store"})
