"""Reading a client request: the exact body bytes (bounded) and the few fields the proxy needs.

The body is parsed only to read ``model`` and ``stream``; what goes upstream is the original bytes.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from starlette.datastructures import Headers
from starlette.requests import Request

from app.auth.access import Principal
from app.errors import InvalidRequest, RequestTooLarge

Endpoint = Literal["messages", "count_tokens"]


@dataclass(slots=True)
class ProxyRequest:
    """One client call to ``/v1/messages`` or ``/v1/messages/count_tokens``.

    ``body`` is the exact bytes the client sent; ``params`` its parsed JSON object.
    ``started`` is ``time.perf_counter()`` at arrival (seconds).
    """

    endpoint: Endpoint
    path: str
    query: str
    raw_headers: list[tuple[str, str]]
    headers: Headers
    body: bytes
    params: dict[str, Any]
    principal: Principal
    client_ip: str
    started: float = field(default_factory=time.perf_counter)
    proxy_request_id: str = field(default_factory=lambda: "preq_" + uuid.uuid4().hex[:24])
    notes: list[str] = field(default_factory=list)  # e.g. "thinking_stripped"; stored on the usage event
    reservation: Any = None  # app.usage.ledger.Reservation from the quota check; settled once in finish()

    @property
    def model(self) -> str | None:
        model = self.params.get("model")
        return model if isinstance(model, str) else None

    @property
    def stream(self) -> bool:
        return self.endpoint == "messages" and self.params.get("stream") is True

    @property
    def betas(self) -> list[str]:
        """``anthropic-beta`` values (comma-separated, possibly repeated headers)."""
        return [b.strip() for value in self.headers.getlist("anthropic-beta")
                for b in value.split(",") if b.strip()]


async def read_body(request: Request, limit_bytes: int) -> bytes:
    """The request body, at most ``limit_bytes`` bytes; raises RequestTooLarge (413) past it."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit_bytes:
        raise RequestTooLarge(f"request body is {declared} bytes; the limit is {limit_bytes} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit_bytes:
            raise RequestTooLarge(f"request body exceeds the limit of {limit_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_params(body: bytes) -> dict[str, Any]:
    """Parse the JSON object; raises InvalidRequest (400) for anything else."""
    if not body:
        raise InvalidRequest("request body is empty; expected a JSON object")
    try:
        params = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest(f"request body is not valid JSON: {exc}") from None
    if not isinstance(params, dict):
        raise InvalidRequest("request body must be a JSON object")
    if "model" in params and not isinstance(params["model"], str):
        raise InvalidRequest("model: expected a string")
    return params


async def build_proxy_request(request: Request, *, endpoint: Endpoint, principal: Principal,
                              limit_bytes: int, upstream_path: str) -> ProxyRequest:
    """Read and check the body, then wrap everything the forwarder needs."""
    body = await read_body(request, limit_bytes)
    params = parse_params(body)
    raw_headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.scope["headers"]]
    client = request.client
    return ProxyRequest(endpoint=endpoint, path=upstream_path,
                        query=request.scope.get("query_string", b"").decode("latin-1"),
                        raw_headers=raw_headers, headers=request.headers, body=body, params=params,
                        principal=principal, client_ip=client.host if client else "")
