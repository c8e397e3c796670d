"""``UiRoute``: the route class of every dashboard route. It turns what a handler raises into a
page instead of the API's JSON envelope:

- ``LoginRequired`` -> 303 to ``/ui/login?next=...`` (htmx: ``HX-Redirect``, so the whole page moves);
- ``ProxyError`` (bad input, not found, CSRF, rate limit) -> its status with its message in an alert
  (htmx: the ``_alert.html`` fragment with ``HX-Retarget: #alerts``; else the full ``error.html`` page);
- ``RequestValidationError`` -> 400 with the field names; anything else -> 500 "internal error",
  logged, never a stack trace.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.responses import RedirectResponse, Response

from app.errors import ApiError, InvalidRequest, ProxyError
from app.ui.render import apply_headers, is_htmx, render
from app.ui.session import LoginRequired

log = logging.getLogger(__name__)


def login_redirect(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    location = "/ui/login" + (f"?next={quote(target, safe='')}" if target not in ("/ui", "/ui/") else "")
    if is_htmx(request):
        response: Response = Response(status_code=200, headers={"hx-redirect": location})
    else:
        response = RedirectResponse(location, status_code=303)
    apply_headers(request, response)
    return response


def render_error(request: Request, exc: ProxyError) -> Response:
    headers = {k: v for k, v in exc.headers.items() if k.lower() == "retry-after"}
    if is_htmx(request):
        headers.update({"hx-retarget": "#alerts", "hx-reswap": "innerHTML"})
    return render(request, "error.html", {"error": exc.message, "status_code": exc.status_code},
                  partial="_alert.html", status_code=exc.status_code, headers=headers)


def _validation_message(exc: RequestValidationError) -> str:
    parts = [f"{'.'.join(str(p) for p in err.get('loc', ()) if p not in ('body', 'query', 'path'))}: "
             f"{err.get('msg')}" for err in exc.errors()]
    return "; ".join(parts) or "invalid input"


class UiRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def ui_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except LoginRequired:
                return login_redirect(request)
            except ProxyError as exc:
                return render_error(request, exc)
            except RequestValidationError as exc:
                return render_error(request, InvalidRequest(_validation_message(exc)))
            except Exception as exc:
                log.error("dashboard error on %s: %s", request.url.path, type(exc).__name__, exc_info=exc)
                return render_error(request, ApiError("Internal error; the details are in the server log."))

        return ui_handler
