"""FakeAnthropic: a scriptable stand-in for api.anthropic.com on a real socket, for tests that
drive the proxy with real clients (the Claude Code CLI, the ``anthropic`` SDK).

It records every request as received (method, path, raw query, lower-cased header list, raw body
bytes) and answers ``POST /v1/messages`` from a script of ``Reply`` objects, as JSON or as an SSE
stream depending on the body's ``stream`` field. Wire shapes follow
https://docs.anthropic.com/en/api/messages, /messages-streaming and /errors.

    with running_fake_anthropic() as fake:
        fake.enqueue(tool_use_reply("Bash", {"command": "echo hi"}), when=has_tools)
        fake.enqueue(rate_limit_reply())              # next /v1/messages of any kind
        ... point a client at fake.url ...
        assert fake.messages_requests()[0].body == bytes_sent_by_the_client
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Literal

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from tests.fakes.base import FakeServer
from tests.fakes.script import RecordedMixin

DEFAULT_TEXT = "Hello from fake Anthropic"
# Distinct numbers, so a test can tell which counter went where.
DEFAULT_USAGE: Mapping[str, Any] = {
    "input_tokens": 25, "cache_creation_input_tokens": 1200, "cache_read_input_tokens": 3400,
    "cache_creation": {"ephemeral_5m_input_tokens": 1000, "ephemeral_1h_input_tokens": 200},
    "output_tokens": 12, "service_tier": "standard",
}
ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
               404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error",
               500: "api_error", 504: "timeout_error", 529: "overloaded_error"}
_ids = itertools.count(1)


def _new_id(prefix: str) -> str:
    return f"{prefix}_fake{next(_ids):08d}"


@dataclass(frozen=True)
class RecordedRequest(RecordedMixin):
    method: str
    path: str
    query: str                       # raw, e.g. "beta=true"
    headers: list[tuple[str, str]]   # as received: lower-cased names, duplicates kept, in order
    body: bytes                      # the exact bytes received


Predicate = Callable[[RecordedRequest], bool]


def is_messages(request: RecordedRequest) -> bool:
    return request.method == "POST" and request.path == "/v1/messages"


def is_count_tokens(request: RecordedRequest) -> bool:
    return request.method == "POST" and request.path == "/v1/messages/count_tokens"


def _body(request: RecordedRequest) -> dict[str, Any]:
    try:
        body = request.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def has_tools(request: RecordedRequest) -> bool:
    """A /v1/messages call offering tools: Claude Code's conversation turns (its side calls,
    e.g. title or Bash-prefix checks on a small model, send none)."""
    return is_messages(request) and bool(_body(request).get("tools"))


def ends_with_tool_result(request: RecordedRequest) -> bool:
    """A /v1/messages call whose last user message carries a ``tool_result`` block."""
    users = [m for m in _body(request).get("messages", []) if m.get("role") == "user"]
    content = users[-1].get("content") if users else None
    return is_messages(request) and isinstance(content, list) and any(
        isinstance(b, dict) and b.get("type") == "tool_result" for b in content)


def model_contains(fragment: str) -> Predicate:
    return lambda request: is_messages(request) and fragment in str(_body(request).get("model", ""))


@dataclass(frozen=True)
class Reply:
    """One scripted answer. A 200 with ``content`` renders as a Message (JSON) or as Anthropic's
    SSE event sequence when the request has ``"stream": true``; ``json_body`` is sent verbatim
    (errors, count_tokens). Times are seconds.

    stall_s: wait before the status line. chunk_delay_s: wait before each SSE event after
    message_start. abort_after_events: send that many SSE events, then drop the connection
    (no terminating chunk). stream_error: an ``error`` event (envelope's ``error`` dict) sent
    after the content blocks instead of message_delta/message_stop, as Anthropic does when
    overloaded mid-stream. message_delta_usage: "full" (the cumulative usage the API sends
    today) or "output_tokens" (only that, as in older docs). sse_chunks: for a streamed request,
    these bytes are the body, chunk by chunk, verbatim (malformed streams), instead of ``content``'s
    events.
    """

    status: int = 200
    content: tuple[dict[str, Any], ...] = ()
    stop_reason: str | None = None   # None: "tool_use" if a tool_use block is present, else "end_turn"
    usage: Mapping[str, Any] = field(default_factory=lambda: dict(DEFAULT_USAGE))
    headers: Mapping[str, str] = field(default_factory=dict)
    json_body: Any = None
    stall_s: float = 0.0
    chunk_delay_s: float = 0.0
    ping: bool = True
    abort_after_events: int | None = None
    stream_error: Mapping[str, str] | None = None
    message_delta_usage: Literal["full", "output_tokens"] = "full"
    sse_chunks: tuple[bytes, ...] | None = None

    def message(self, model: str) -> dict[str, Any]:
        stop_reason = self.stop_reason or (
            "tool_use" if any(b["type"] == "tool_use" for b in self.content) else "end_turn")
        return {"id": _new_id("msg"), "type": "message", "role": "assistant", "model": model,
                "content": [dict(b) for b in self.content], "stop_reason": stop_reason,
                "stop_sequence": None, "usage": dict(self.usage)}


def text_block(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def tool_use_block(name: str, input: Mapping[str, Any], tool_use_id: str | None = None) -> dict[str, Any]:
    return {"type": "tool_use", "id": tool_use_id or _new_id("toolu"), "name": name, "input": dict(input)}


def thinking_block(thinking: str, signature: str = "EqQBCkYIBRgCKkBmYWtlLXNpZ25hdHVyZQ==") -> dict[str, Any]:
    return {"type": "thinking", "thinking": thinking, "signature": signature}


def message_reply(*blocks: dict[str, Any], **options: Any) -> Reply:
    return Reply(content=tuple(blocks), **options)


def text_reply(text: str = DEFAULT_TEXT, **options: Any) -> Reply:
    return message_reply(text_block(text), **options)


def tool_use_reply(name: str, input: Mapping[str, Any], *, text: str | None = None,
                   tool_use_id: str | None = None, **options: Any) -> Reply:
    """Optional lead-in text, then one tool_use block; stop_reason "tool_use"."""
    blocks = ([text_block(text)] if text else []) + [tool_use_block(name, input, tool_use_id)]
    return message_reply(*blocks, **options)


def thinking_reply(thinking: str, text: str = DEFAULT_TEXT, **options: Any) -> Reply:
    return message_reply(thinking_block(thinking), text_block(text), **options)


def json_reply(body: Any, status: int = 200, **options: Any) -> Reply:
    return Reply(status=status, json_body=body, **options)


def error_reply(status: int, message: str | None = None, *, error_type: str | None = None,
                **options: Any) -> Reply:
    """Anthropic's error envelope: {"type": "error", "error": {type, message}, "request_id"}."""
    error_type = error_type or ERROR_TYPES.get(status, "api_error")
    request_id = _new_id("req")
    body = {"type": "error", "error": {"type": error_type, "message": message or error_type},
            "request_id": request_id}
    options["headers"] = {"request-id": request_id, **options.get("headers", {})}
    return json_reply(body, status, **options)


def rate_limit_reply(retry_after_s: int = 30, **options: Any) -> Reply:
    headers = {"retry-after": str(retry_after_s),
               "anthropic-ratelimit-requests-limit": "50", "anthropic-ratelimit-requests-remaining": "0",
               "anthropic-ratelimit-requests-reset": "2030-01-01T00:00:30Z",
               "anthropic-ratelimit-input-tokens-limit": "30000",
               "anthropic-ratelimit-input-tokens-remaining": "0",
               "anthropic-ratelimit-input-tokens-reset": "2030-01-01T00:00:30Z",
               **options.pop("headers", {})}
    return error_reply(429, "Number of request tokens has exceeded your per-minute rate limit",
                       headers=headers, **options)


def overloaded_reply(**options: Any) -> Reply:
    return error_reply(529, "Overloaded", **options)


def sse_reply(*chunks: bytes, **options: Any) -> Reply:
    """A 200 stream whose body is ``chunks`` verbatim (e.g. an event whose data is not JSON)."""
    return Reply(sse_chunks=tuple(chunks), **options)


def sse_frame(event: dict[str, Any]) -> bytes:
    """One well-formed SSE frame for ``event`` (its ``type`` is the event name)."""
    return _sse(event)


def _sse(event: dict[str, Any]) -> bytes:
    return f"event: {event['type']}\ndata: {json.dumps(event, separators=(',', ':'))}\n\n".encode()


def _pieces(text: str, size: int) -> list[str]:
    return [text[i:i + size] for i in range(0, len(text), size)] or [""]


def stream_events(reply: Reply, model: str) -> list[dict[str, Any]]:
    """The SSE events Anthropic would send for ``reply``, in order."""
    message = reply.message(model)
    start = dict(message, content=[], stop_reason=None, usage=dict(message["usage"], output_tokens=1))
    events: list[dict[str, Any]] = [{"type": "message_start", "message": start}]
    if reply.ping:
        events.append({"type": "ping"})
    for index, block in enumerate(message["content"]):
        kind = block["type"]
        if kind == "text":
            opening, deltas = dict(block, text=""), [
                {"type": "text_delta", "text": t} for t in _pieces(block["text"], max(1, len(block["text"]) // 3 + 1))]
        elif kind == "thinking":
            opening = {"type": "thinking", "thinking": "", "signature": ""}
            deltas = [{"type": "thinking_delta", "thinking": t} for t in _pieces(block["thinking"], 24)]
            deltas.append({"type": "signature_delta", "signature": block["signature"]})
        elif kind == "tool_use":
            opening = dict(block, input={})
            deltas = [{"type": "input_json_delta", "partial_json": ""}] + [
                {"type": "input_json_delta", "partial_json": p} for p in _pieces(json.dumps(block["input"]), 16)]
        else:  # redacted_thinking and other whole blocks arrive in content_block_start alone
            opening, deltas = block, []
        events.append({"type": "content_block_start", "index": index, "content_block": opening})
        events += [{"type": "content_block_delta", "index": index, "delta": d} for d in deltas]
        events.append({"type": "content_block_stop", "index": index})
    if reply.stream_error is not None:
        return events + [{"type": "error", "error": dict(reply.stream_error)}]
    usage = dict(message["usage"])
    if reply.message_delta_usage == "output_tokens":
        usage = {"output_tokens": usage["output_tokens"]}
    for key in ("service_tier", "cache_creation"):  # message_start has them; message_delta does not
        usage.pop(key, None)
    events.append({"type": "message_delta", "delta": {"stop_reason": message["stop_reason"],
                                                      "stop_sequence": None}, "usage": usage})
    return events + [{"type": "message_stop"}]


class _ReplyResponse(Response):
    """Sends a Reply by hand, so it can stall, pace events, and drop the connection midway."""

    def __init__(self, reply: Reply, body: dict[str, Any], closing: threading.Event) -> None:
        self.reply, self.request_body, self.closing = reply, body, closing

    async def _pause(self, seconds: float, receive: Receive) -> bool:
        """Sleep up to ``seconds``; False if the client left or the fake is shutting down."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while (remaining := deadline - loop.time()) > 0:
            if self.closing.is_set():
                return False
            try:
                if (await asyncio.wait_for(receive(), min(remaining, 0.1)))["type"] == "http.disconnect":
                    return False
            except TimeoutError:
                pass
        return True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        reply = self.reply
        if reply.stall_s and not await self._pause(reply.stall_s, receive):
            return
        headers = {"request-id": _new_id("req"), **reply.headers}
        streaming = reply.json_body is None and bool(self.request_body.get("stream"))
        if not streaming:
            payload = reply.json_body if reply.json_body is not None else reply.message(
                str(self.request_body.get("model", "claude-fake")))
            response = JSONResponse(payload, reply.status, headers=headers)
            await response(scope, receive, send)
            return
        headers.update({"content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache"})
        await send({"type": "http.response.start", "status": reply.status,
                    "headers": [(k.encode(), v.encode()) for k, v in headers.items()]})
        if reply.sse_chunks is not None:
            for chunk in reply.sse_chunks:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        events = stream_events(reply, str(self.request_body.get("model", "claude-fake")))
        for sent, event in enumerate(events):
            if reply.abort_after_events is not None and sent >= reply.abort_after_events:
                return  # no final empty chunk: the server closes the socket mid-body
            if sent and reply.chunk_delay_s and not await self._pause(reply.chunk_delay_s, receive):
                return
            await send({"type": "http.response.body", "body": _sse(event), "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})



class FakeAnthropic(FakeServer[RecordedRequest, "Reply"]):
    """ASGI app. ``requests`` lists every RecordedRequest in arrival order. Each /v1/messages
    (and count_tokens) request takes the first scripted entry whose ``when`` matches, else the
    ``default`` reply (a Reply, or a function RecordedRequest -> Reply). With ``api_key`` set,
    requests without that x-api-key or ``Authorization: Bearer`` get a 401."""

    def __init__(self, *, default: Reply | Callable[[RecordedRequest], Reply] | None = None,
                 api_key: str | None = None, count_tokens_input_tokens: int | None = None) -> None:
        super().__init__()
        self.default = default or text_reply()
        self.api_key = api_key
        self.count_tokens_input_tokens = count_tokens_input_tokens
        self._app = Starlette(routes=[
            Route("/v1/messages", self._messages, methods=["POST"]),
            Route("/v1/messages/count_tokens", self._messages, methods=["POST"]),
            Route("/api/hello", self._hello, methods=["GET", "HEAD"]),
            Route("/{path:path}", self._not_found,
                  methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]),
        ])

    default_when = staticmethod(is_messages)  # enqueue(...) without ``when``: the next /v1/messages

    def messages_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if is_messages(r)]

    def last_messages_body(self) -> Any:
        """The last POST /v1/messages body, parsed. Raises IndexError if there was none."""
        return self.messages_requests()[-1].json()

    async def _record(self, request: Request) -> RecordedRequest:
        recorded = RecordedRequest(
            method=request.method, path=request.url.path, query=request.scope["query_string"].decode("latin-1"),
            headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.scope["headers"]],
            body=await request.body())
        self._append(recorded)
        return recorded

    def _authorized(self, recorded: RecordedRequest) -> bool:
        return self.api_key is None or self.api_key in (
            recorded.header("x-api-key"), (recorded.header("authorization") or "").removeprefix("Bearer "))

    async def _messages(self, request: Request) -> Response:
        recorded = await self._record(request)
        try:
            body = recorded.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            reply = error_reply(400, "request body is not a JSON object")
        elif not self._authorized(recorded):
            reply = error_reply(401, "invalid x-api-key")
        elif (scripted := self._script.take(recorded)) is not None:
            reply = scripted
        elif is_count_tokens(recorded):
            reply = json_reply({"input_tokens": self.count_tokens_input_tokens or max(1, len(recorded.body) // 4)})
        else:
            reply = self.default(recorded) if callable(self.default) else self.default
        return _ReplyResponse(reply, body or {}, self.closing)

    async def _hello(self, request: Request) -> Response:
        await self._record(request)
        return JSONResponse({"message": "hello"})

    async def _not_found(self, request: Request) -> Response:
        await self._record(request)
        return _ReplyResponse(error_reply(404, f"Not found: {request.url.path}"), {}, self.closing)


def running_fake_anthropic(**options: Any) -> AbstractContextManager[FakeAnthropic]:
    """A FakeAnthropic(**options) served on 127.0.0.1; ``.url`` is its base URL (no trailing /)."""
    return FakeAnthropic.running(**options)
