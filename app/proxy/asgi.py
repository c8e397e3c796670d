"""The Messages routes without FastAPI's routing and dependency solving on the hot path.

``MessagesASGI`` is a pure ASGI middleware in front of the FastAPI router: a ``POST`` to
``/v1/messages``, ``/v1/messages/count_tokens`` or their ``/ak/{access_key}/...`` forms is served
here, with the same resolver, admission, Forwarder and usage code as ``routes.py`` (both call
``serve_messages``); anything else (other methods, trailing slashes, other paths) goes on to FastAPI,
whose routes for these paths stay the reference and answer e.g. 405. Errors are rendered as the
app's exception handlers render them: a ProxyError as its envelope, anything else as 500
``api_error`` ("internal proxy error"), logged, never a trace to the client.
FastAPI's per-request work (routing, ``solve_dependencies``, two middlewares' send wrappers) cost
about a third of the proxy's CPU per request before this (issue 16).
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from app.auth.access import Principal
from app.errors import ApiError, ProxyError
from app.proxy.headers import PROXY_KEY_HEADER
from app.proxy.outcome import Outcome
from app.proxy.request import Endpoint, build_proxy_request, refused_request
from app.proxy.responses import error_response

log = logging.getLogger(__name__)

UPSTREAM_PATHS: dict[Endpoint, str] = {"messages": "/v1/messages", "count_tokens": "/v1/messages/count_tokens"}
_ENDPOINTS: dict[str, Endpoint] = {path: endpoint for endpoint, path in UPSTREAM_PATHS.items()}
_KEY_PREFIX = "/ak/"


async def serve_messages(request: Request, services: Any, principal: Principal, endpoint: Endpoint) -> Response:
    """Read the body and hand the call to the Forwarder (``services``: app.services.Services).
    A body refused (400 / 413) is still one usage event. Raises ProxyError."""
    try:
        preq = await build_proxy_request(request, endpoint=endpoint, principal=principal,
                                         limit_bytes=services.settings.max_request_body_bytes,
                                         upstream_path=UPSTREAM_PATHS[endpoint])
    except ProxyError as exc:
        refused = refused_request(request, endpoint=endpoint, principal=principal,
                                  upstream_path=UPSTREAM_PATHS[endpoint])
        services.forwarder.record_outcome(refused, Outcome.of_error(exc))
        raise
    return await services.forwarder.handle(preq)


def match(path: str) -> tuple[Endpoint, str | None] | None:
    """``(endpoint, access key from the path or None)`` for a Messages path, else None.
    The key is one path segment, as FastAPI's ``{access_key}`` matches it."""
    if (endpoint := _ENDPOINTS.get(path)) is not None:
        return endpoint, None
    if path.startswith(_KEY_PREFIX):
        key, slash, rest = path[len(_KEY_PREFIX):].partition("/")
        if key and slash and (endpoint := _ENDPOINTS.get("/" + rest)) is not None:
            return endpoint, key
    return None


class MessagesASGI:
    """Pure ASGI: serves ``POST`` Messages calls (see the module doc), passes the rest to ``app``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or (found := match(scope["path"])) is None:
            await self.app(scope, receive, send)
            return
        endpoint, path_key = found
        request = Request(scope, receive)
        services = scope["app"].state.services
        try:
            key = path_key if path_key is not None else request.headers.get(PROXY_KEY_HEADER)
            principal = await services.resolver.resolve(key, where="header" if path_key is None else "path")
            response = await serve_messages(request, services, principal, endpoint)
        except ProxyError as exc:
            response = error_response(exc)
        except Exception as exc:  # a bug of ours: the envelope, never a trace
            log.error("unhandled error: %s", type(exc).__name__, exc_info=exc)
            response = error_response(ApiError("internal proxy error"))
        await response(scope, receive, send)
