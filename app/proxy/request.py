"""Reading a client request: the exact body bytes (bounded) and the few fields the proxy needs.

The body is parsed only to read ``model`` and ``stream``; what goes upstream is the original bytes.
Its nesting depth is bounded (``MAX_JSON_DEPTH``): Python's JSON parser gives up near 1,000 levels
(RecursionError, caught), and the recursive code that walks parameters later (botocore's validator
and serializer on the Bedrock path, ``json.dumps`` for the thinking retry) would fail short of that;
a body deeper than the bound is a 400, so nothing past ``parse_params`` sees one.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from starlette.datastructures import Headers
from starlette.requests import Request

from app.auth.access import Principal
from app.errors import InvalidRequest, RequestTooLarge

Endpoint = Literal["messages", "count_tokens"]

# Arrays/objects nested deeper than this are refused. serde_json's default recursion limit; real
# Claude Code bodies stay far below it (messages > content > tool input or JSON schema: ~20-30).
MAX_JSON_DEPTH = 128


def depth_exceeds(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """True if the parsed JSON ``value`` nests arrays/objects deeper than ``limit`` (the top level
    counts 1). Iterative, so it cannot recurse itself; it visits containers only, so a body made of
    long strings costs little (0.35 ms for a 750 KB Claude Code-like body, a fifth of its parse)."""
    stack = [(value, 1)]
    pop, push = stack.pop, stack.append
    while stack:
        node, depth = pop()
        if depth > limit:
            return True
        for child in (node.values() if isinstance(node, dict) else node):
            if isinstance(child, dict | list):
                push((child, depth + 1))
    return False


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
    proxy_request_id: str = field(default_factory=lambda: "preq_" + os.urandom(12).hex())  # 96 random bits
    notes: list[str] = field(default_factory=list)  # e.g. "thinking_stripped"; stored on the usage event
    reservation: Any = None  # app.usage.ledger.Reservation from the quota check; settled once in Forwarder.record_outcome()

    model: str | None = field(init=False)  # ``params["model"]`` when a string
    stream: bool = field(init=False)  # a ``/v1/messages`` call with ``"stream": true``

    def __post_init__(self) -> None:
        model = self.params.get("model")
        self.model = model if isinstance(model, str) else None
        self.stream = self.endpoint == "messages" and self.params.get("stream") is True

    def drop_body(self) -> None:
        """Forget the body and its parsed JSON (``model`` and ``stream`` stay): called once
        relaying starts, when nothing needs them any more (the thinking retry and fallback happen
        before the first byte), so an open stream does not hold a 100 KiB+ conversation (issue 16).
        The client's header lines go too (read only to build the upstream request); ``headers`` stays."""
        self.body, self.params, self.raw_headers = b"", {}, []

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
    """Parse the JSON object; raises InvalidRequest (400) for anything else, including a body
    nested deeper than MAX_JSON_DEPTH."""
    if not body:
        raise InvalidRequest("request body is empty; expected a JSON object")
    too_deep = InvalidRequest(f"request body nests arrays/objects deeper than {MAX_JSON_DEPTH} levels")
    try:
        params = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest(f"request body is not valid JSON: {exc}") from None
    except RecursionError:  # ~1,000 levels: the C parser gives up (cheaply) before the stack does
        raise too_deep from None
    # A body with at most MAX_JSON_DEPTH brackets cannot nest deeper: skip the walk.
    if body.count(b"[") + body.count(b"{") > MAX_JSON_DEPTH and depth_exceeds(params):
        raise too_deep
    if not isinstance(params, dict):
        raise InvalidRequest("request body must be a JSON object")
    if "model" in params and not isinstance(params["model"], str):
        raise InvalidRequest("model: expected a string")
    return params


async def build_proxy_request(request: Request, *, endpoint: Endpoint, principal: Principal,
                              limit_bytes: int, upstream_path: str) -> ProxyRequest:
    """Read and check the body, then wrap everything the forwarder needs. Raises RequestTooLarge
    (413) / InvalidRequest (400); ``refused_request`` builds what records those."""
    started = time.perf_counter()
    body = await read_body(request, limit_bytes)
    params = parse_params(body)
    return _proxy_request(request, endpoint=endpoint, principal=principal, upstream_path=upstream_path,
                          body=body, params=params, started=started)


def refused_request(request: Request, *, endpoint: Endpoint, principal: Principal,
                    upstream_path: str) -> ProxyRequest:
    """A ProxyRequest for a call whose body was refused (400 / 413): no body, no params (so no
    model), only what its usage event and log line need."""
    return _proxy_request(request, endpoint=endpoint, principal=principal, upstream_path=upstream_path,
                          body=b"", params={}, started=time.perf_counter())


def _proxy_request(request: Request, *, endpoint: Endpoint, principal: Principal, upstream_path: str,
                   body: bytes, params: dict[str, Any], started: float) -> ProxyRequest:
    raw_headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.scope["headers"]]
    client = request.client
    return ProxyRequest(endpoint=endpoint, path=upstream_path,
                        query=request.scope.get("query_string", b"").decode("latin-1"),
                        raw_headers=raw_headers, headers=request.headers, body=body, params=params,
                        principal=principal, client_ip=client.host if client else "", started=started)
