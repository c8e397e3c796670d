"""The dashboard under ``/ui`` (Jinja2 + htmx; see docs/dashboard.md). One module per area; every
route uses ``UiRoute`` so errors become pages, and ``AdminSession``/``AdminPost`` for login and CSRF."""

from __future__ import annotations

from fastapi import APIRouter

from app.ui import audit, governance, keys, lifecycle, login, me, overview, pricing, users

router = APIRouter(include_in_schema=False)
for area in (login, overview, users, keys, audit, me, pricing, lifecycle, governance):
    router.include_router(area.router, prefix="/ui")
