"""``request-id`` on every admin response, and ``request_id`` in its error envelope (pure ASGI).

For paths under ``/admin`` and ``/v1/organizations`` (Anthropic's Admin API conventions: a
``request-id`` header on every response; errors are
``{"type": "error", "error": {"type", "message"}, "request_id"}``). The id (``req_<24 hex>``) is
also left in ``scope["state"]["request_id"]``. Success bodies pass through untouched and are never
buffered (CSV exports stream); only JSON error bodies (status >= 400) are read to add the id.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

PREFIXES = ("/admin", "/v1/organizations")


def new_request_id() -> str:
    return "req_" + secrets.token_hex(12)


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp, prefixes: tuple[str, ...] = PREFIXES) -> None:
        self.app, self._prefixes = app, frozenset(prefixes)
        self._under = tuple(p + "/" for p in prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path not in self._prefixes and not path.startswith(self._under):
            await self.app(scope, receive, send)
            return
        request_id = new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        held: dict[str, Any] = {}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"request-id"]
                headers.append((b"request-id", request_id.encode()))
                content_type = next((v for k, v in headers if k.lower() == b"content-type"), b"")
                message = {**message, "headers": headers}
                if message["status"] >= 400 and content_type.startswith(b"application/json"):
                    held["start"], held["body"] = message, b""  # rewrite the body before sending headers
                    return
                await send(message)
                return
            if message["type"] == "http.response.body" and "start" in held:
                held["body"] += message.get("body", b"")
                if message.get("more_body", False):
                    return
                body = _with_request_id(held["body"], request_id)
                start = held.pop("start")
                start["headers"] = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
                start["headers"].append((b"content-length", str(len(body)).encode()))
                await send(start)
                await send({"type": "http.response.body", "body": body, "more_body": False})
                return
            await send(message)

        await self.app(scope, receive, send_with_id)


def _with_request_id(body: bytes, request_id: str) -> bytes:
    try:
        doc = json.loads(body)
    except ValueError:
        return body
    if isinstance(doc, dict) and doc.get("type") == "error":
        doc["request_id"] = request_id
        return json.dumps(doc, separators=(",", ":")).encode()
    return body
