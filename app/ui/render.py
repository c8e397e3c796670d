"""Jinja2 rendering for the dashboard: the template environment (autoescape on), the htmx asset
constants, and :func:`render`, which returns the ``_partial`` for htmx requests and the full page
otherwise, with the session cookie, ``Vary: HX-Request`` and the security headers.

``HTMX_SRC`` / ``HTMX_INTEGRITY`` are the one place the CDN URL and its SRI hash live; the browser
tests check that the hash matches the npm package pinned in tests/ui/package.json (see docs/dashboard.md).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime, tzinfo
from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import Request
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.responses import HTMLResponse

from app.admin.key_state import key_state
from app.ui.session import current_session, session_codec

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates"
HTMX_VERSION = "2.0.11"
HTMX_SRC = f"https://cdn.jsdelivr.net/npm/htmx.org@{HTMX_VERSION}/dist/htmx.min.js"
# openssl dgst -sha384 -binary tests/ui/node_modules/htmx.org/dist/htmx.min.js | openssl base64 -A
HTMX_INTEGRITY = "sha384-2OatzQy1H+Zd/IIrjr1TcuDGqLXeHhbooAyJY1KdQMKnr4LZ22k31GBLdYKHmVjg"
# htmx 2 does not swap 4xx/5xx answers by default; ours are readable alert fragments (sent with
# HX-Retarget: #alerts), so swap them. History restores must get full pages, not fragments.
HTMX_CONFIG = {
    "responseHandling": [{"code": "204", "swap": False}, {"code": "[23]..", "swap": True},
                         {"code": "[45]..", "swap": True, "error": False}],
    "historyRestoreAsHxRequest": False, "allowEval": False, "includeIndicatorStyles": False,
}


def _content_security_policy(nonce: str) -> str:
    return ("default-src 'self'; "
            f"script-src 'nonce-{nonce}' https://cdn.jsdelivr.net; "
            "style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; "
            "frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'")


def fmt_int(value: Any) -> str:
    return f"{int(value or 0):,}"


def fmt_usd(value: Any) -> str:
    value = float(value or 0)
    return f"${value:,.4f}" if 0 < abs(value) < 1 else f"${value:,.2f}"


def fmt_time(value: Any, zone: tzinfo | None = None) -> str:
    """A datetime (naive = UTC, as the store returns them) as ``YYYY-MM-DD HH:MM TZ``; "—" for None."""
    if not isinstance(value, datetime):
        return "—" if value is None else str(value)
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    local = aware.astimezone(zone or UTC)
    return local.strftime("%Y-%m-%d %H:%M ") + (local.tzname() or "UTC")


def fmt_pct(part: Any, whole: Any) -> str:
    return f"{100 * float(part or 0) / float(whole):.1f}%" if whole else "—"


def compact_json(value: Any) -> str:
    """A value as short JSON text (escaped by autoescape like any other string)."""
    return json.dumps(value, default=str, separators=(", ", ": "), sort_keys=True)


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES_DIR), autoescape=select_autoescape(["html", "svg"],
                      default_for_string=True, default=True), trim_blocks=True, lstrip_blocks=True)
    env.filters.update(int=fmt_int, usd=fmt_usd, time=fmt_time, compact_json=compact_json)
    env.globals.update(key_state=key_state, pct=fmt_pct, htmx_src=HTMX_SRC, htmx_integrity=HTMX_INTEGRITY,
                       htmx_config=json.dumps(HTMX_CONFIG))
    return env


def is_htmx(request: Request) -> bool:
    """True for an htmx request that expects a fragment (not a history restore)."""
    return (request.headers.get("hx-request") == "true"
            and request.headers.get("hx-history-restore-request") != "true")


def render(request: Request, template: str, context: Mapping[str, Any] | None = None, *,
           partial: str | None = None, status_code: int = 200, headers: Mapping[str, str] | None = None,
           force_partial: bool = False) -> HTMLResponse:
    """Render ``partial`` for htmx requests (or when ``force_partial``), else the full ``template``.

    Context always has ``csrf_token``, ``username`` (None when logged out), ``nonce`` and ``path``.
    Every answer is ``Cache-Control: no-store`` (pages can hold a freshly issued key).
    """
    session = current_session(request)
    nonce = secrets.token_urlsafe(16)
    name = partial if partial and (force_partial or is_htmx(request)) else template
    values = {"request": request, "csrf_token": session.csrf, "username": session.username, "nonce": nonce,
              "path": request.url.path, **(context or {})}
    body = environment().get_template(name).render(values)
    response = HTMLResponse(body, status_code=status_code, headers=dict(headers or {}))
    apply_headers(request, response, nonce)
    return response


def apply_headers(request: Request, response: Any, nonce: str | None = None) -> None:
    """Security and caching headers; sets the session cookie when the session is new."""
    response.headers["vary"] = "HX-Request"
    response.headers["cache-control"] = "no-store"
    response.headers["x-content-type-options"] = "nosniff"
    response.headers["referrer-policy"] = "same-origin"
    response.headers["x-frame-options"] = "DENY"
    response.headers["content-security-policy"] = _content_security_policy(nonce or secrets.token_urlsafe(16))
    session = current_session(request)
    if session.new:
        session_codec(request.app.state.services).store(response, session, scheme=request.url.scheme)
