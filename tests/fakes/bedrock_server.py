"""FakeBedrock: a scriptable stand-in for the Bedrock Runtime endpoint on a real socket, for tests
that drive the real aiobotocore client (and the proxy) over loopback.

Routes as botocore calls them (bedrock-runtime service-2.json; ``modelId`` is URL-encoded, e.g.
``us.anthropic.claude-sonnet-4-20250514-v1%3A0``, and may be an ARN containing ``/``):
``POST /model/{modelId}/converse`` (JSON), ``/converse-stream`` (``application/vnd.amazon.eventstream``,
chunked), ``/invoke`` (InvokeModel: the native Anthropic body in, a native Message out),
``/invoke-with-response-stream`` (InvokeModelWithResponseStream: event-stream ``chunk`` events whose
payload is ``{"bytes": "<base64 of one native stream event's JSON>"}``, the last one, ``message_stop``,
carrying ``amazon-bedrock-invocationMetrics``; botocore's ``ResponseStream`` / ``PayloadPart``) and ``/count-tokens`` (both input forms: ``converse``, and ``invokeModel`` whose base64
``body`` is a native Anthropic body, checked by ``native_body_error``). Errors look like the service's: ``x-amzn-ErrorType:
<Code>:http://internal.amazon.com/coral/com.amazon.bedrock/`` and ``{"message": ...}``.

    with running_fake_bedrock() as fake:
        fake.enqueue(stream_text("Hello", chunk=2, delay_s=0.05))   # next call, any operation
        fake.enqueue(http_error(429, "ThrottlingException", "Too many tokens"), when=is_converse)
        runtime = BedrockRuntime("us-east-1", endpoint_url=fake.url)
        ...
        assert fake.requests[0].operation == "ConverseStream"

A content Reply (``converse_text``, ``stream_text``, ``stream_tool_use`` ...) answers any route:
a Converse JSON body for ``/converse``, its ConverseStream events for ``/converse-stream``, the same
content as a native Message for ``/invoke`` and as native stream events for ``/invoke-with-response-stream``.
Shapes: https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ConverseStream.html
"""

from __future__ import annotations

import asyncio
import base64
import functools
import itertools
import json
import threading
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import unquote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from tests.fakes.eventstream import encode_event, encode_exception, json_payload
from tests.fakes.script import RecordedMixin
from tests.fakes.base import FakeServer

DEFAULT_TEXT = "Hello from fake Bedrock"
# Distinct numbers, so a test can tell which counter went where.
DEFAULT_USAGE: Mapping[str, int] = {"inputTokens": 25, "outputTokens": 12, "totalTokens": 4637,
                                    "cacheReadInputTokens": 3400, "cacheWriteInputTokens": 1200}
DEFAULT_LATENCY_MS = 321
EVENTSTREAM_CONTENT_TYPE = "application/vnd.amazon.eventstream"
ERROR_TYPE_SUFFIX = ":http://internal.amazon.com/coral/com.amazon.bedrock/"
# The HTTP status the service uses for each error code (service-2.json "error" traits).
ERROR_STATUS: Mapping[str, int] = {
    "ValidationException": 400, "AccessDeniedException": 403, "ResourceNotFoundException": 404,
    "ModelTimeoutException": 408, "ModelErrorException": 424, "ModelStreamErrorException": 424,
    "ModelNotReadyException": 429, "ThrottlingException": 429, "ServiceQuotaExceededException": 400,
    "InternalServerException": 500, "ServiceUnavailableException": 503,
}
OPERATIONS = {"converse": "Converse", "converse-stream": "ConverseStream", "count-tokens": "CountTokens",
              "invoke": "InvokeModel", "invoke-with-response-stream": "InvokeModelWithResponseStream"}
STREAM_OPERATIONS = frozenset({"ConverseStream", "InvokeModelWithResponseStream"})
INVOKE_OPERATIONS = frozenset({"InvokeModel", "InvokeModelWithResponseStream"})
NATIVE_MODEL = "claude-fake-bedrock-native"  # the ``model`` a native answer names (the proxy must replace it)
METRICS_KEY = "amazon-bedrock-invocationMetrics"
_ids = itertools.count(1)


@dataclass(frozen=True)
class RecordedRequest(RecordedMixin):
    operation: str                   # "Converse" | "ConverseStream" | "InvokeModel" | ... (AWS names)
    model_id: str                    # URL-decoded, e.g. "us.anthropic.claude-...-v1:0"
    raw_path: str                    # as sent, e.g. "/model/us.anthropic...-v1%3A0/converse"
    headers: list[tuple[str, str]]   # lower-cased names, in order
    body: bytes


Predicate = Callable[[RecordedRequest], bool]


def any_call(request: RecordedRequest) -> bool:
    return True


def is_converse(request: RecordedRequest) -> bool:
    return request.operation == "Converse"


def is_converse_stream(request: RecordedRequest) -> bool:
    return request.operation == "ConverseStream"


def is_count_tokens(request: RecordedRequest) -> bool:
    return request.operation == "CountTokens"


def is_invoke(request: RecordedRequest) -> bool:
    return request.operation == "InvokeModel"


def is_invoke_stream(request: RecordedRequest) -> bool:
    return request.operation == "InvokeModelWithResponseStream"


@dataclass(frozen=True)
class Reply:
    """One scripted answer. Times are seconds.

    content: Converse content blocks (``{"text": ...}``, ``{"toolUse": ...}``,
    ``{"reasoningContent": ...}``); rendered as a Converse body or as stream events.
    events: explicit stream events (botocore's shape, ``{"contentBlockDelta": {...}}``), used
    instead of those derived from ``content``. json_body: sent verbatim (errors, count-tokens).
    stall_s: wait before the status line. event_delay_s: wait before each event after the first;
    delays_s[i], if given, replaces it before event i. chunk: characters per text/reasoning/
    tool-input delta. exception: ``(exceptionType, message)`` frame sent after ``events_before_exception``
    events (all if None). disconnect_after_events: send that many events, then drop the
    connection (no terminating chunk). corrupt_frame: ``(after_events, kind)``: send that many
    events, then one frame botocore cannot decode -- ``"crc"`` (the next event with a wrong message
    CRC) or ``"garbage"`` (bytes that are no event-stream frame) -- and end the body.
    """

    status: int = 200
    content: tuple[dict[str, Any], ...] = ({"text": DEFAULT_TEXT},)
    stop_reason: str | None = None   # None: "tool_use" if a toolUse block is present, else "end_turn"
    usage: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_USAGE))
    latency_ms: int = DEFAULT_LATENCY_MS
    events: tuple[dict[str, Any], ...] | None = None
    json_body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    stall_s: float = 0.0
    event_delay_s: float = 0.0
    delays_s: tuple[float, ...] = ()
    chunk: int = 8
    exception: tuple[str, str] | None = None
    events_before_exception: int | None = None
    disconnect_after_events: int | None = None
    corrupt_frame: tuple[int, str] | None = None
    native_events: tuple[dict[str, Any], ...] | None = None  # explicit native stream events (invoke routes)
    invocation_metrics: bool = True  # message_stop carries amazon-bedrock-invocationMetrics (invoke stream)

    def resolved_stop_reason(self) -> str:
        return self.stop_reason or ("tool_use" if any("toolUse" in b or b.get("type") == "tool_use"
                                                      for b in self.content) else "end_turn")

    def native_usage(self) -> dict[str, int]:
        return {"input_tokens": self.usage.get("inputTokens", 0), "output_tokens": self.usage.get("outputTokens", 0),
                "cache_creation_input_tokens": self.usage.get("cacheWriteInputTokens", 0),
                "cache_read_input_tokens": self.usage.get("cacheReadInputTokens", 0)}

    def native_body(self) -> dict[str, Any]:
        """The InvokeModel answer: a native Anthropic Message (Bedrock's own id and model name)."""
        return {"id": f"msg_bdrk_fake{next(_ids):08d}", "type": "message", "role": "assistant",
                "model": NATIVE_MODEL, "content": [native_block(b) for b in self.content],
                "stop_reason": self.resolved_stop_reason(), "stop_sequence": None, "usage": self.native_usage()}

    def invoke_stream_events(self) -> list[dict[str, Any]]:
        """The InvokeModelWithResponseStream events in botocore's shape, ``{"chunk": {"bytes": <JSON>}}``
        (the encoder base64s the bytes into the frame's payload, as the service does)."""
        return [{"chunk": {"bytes": json.dumps(e, separators=(",", ":")).encode()}} for e in self.native_stream()]

    def native_stream(self) -> list[dict[str, Any]]:
        """The native stream events: ``native_events``, or those derived from ``content``."""
        if self.native_events is not None:
            return [dict(e) for e in self.native_events]
        usage = self.native_usage()
        start_usage = {**usage, "output_tokens": 1}
        events: list[dict[str, Any]] = [{"type": "message_start", "message": {
            "id": f"msg_bdrk_fake{next(_ids):08d}", "type": "message", "role": "assistant", "model": NATIVE_MODEL,
            "content": [], "stop_reason": None, "stop_sequence": None, "usage": start_usage}}]
        for index, block in enumerate(self.content):
            events += _native_block_events(index, native_block(block), self.chunk)
        events.append({"type": "message_delta", "delta": {"stop_reason": self.resolved_stop_reason(),
                                                          "stop_sequence": None},
                       "usage": {"output_tokens": usage["output_tokens"]}})
        stop: dict[str, Any] = {"type": "message_stop"}
        if self.invocation_metrics:
            stop[METRICS_KEY] = {"inputTokenCount": usage["input_tokens"], "outputTokenCount": usage["output_tokens"],
                                 "invocationLatency": self.latency_ms, "firstByteLatency": self.latency_ms // 3,
                                 "cacheReadInputTokenCount": usage["cache_read_input_tokens"],
                                 "cacheWriteInputTokenCount": usage["cache_creation_input_tokens"]}
        return events + [stop]

    def converse_body(self) -> dict[str, Any]:
        """The Converse response JSON (bytes blobs base64-encoded by the encoder)."""
        return {"output": {"message": {"role": "assistant", "content": [dict(b) for b in self.content]}},
                "stopReason": self.resolved_stop_reason(), "usage": dict(self.usage),
                "metrics": {"latencyMs": self.latency_ms}}

    def stream_events(self) -> list[dict[str, Any]]:
        """The ConverseStream events for this reply, in botocore's parsed shape."""
        if self.events is not None:
            return [dict(e) for e in self.events]
        events: list[dict[str, Any]] = [{"messageStart": {"role": "assistant"}}]
        for index, block in enumerate(self.content):
            events += _block_events(index, block, self.chunk)
        events.append({"messageStop": {"stopReason": self.resolved_stop_reason()}})
        events.append({"metadata": {"usage": dict(self.usage), "metrics": {"latencyMs": self.latency_ms}}})
        return events

    def delay_before(self, index: int) -> float:
        if index < len(self.delays_s):
            return self.delays_s[index]
        return self.event_delay_s if index else 0.0


def _pieces(text: str, size: int) -> list[str]:
    return [text[i:i + size] for i in range(0, len(text), max(1, size))] or [""]


def _block_events(index: int, block: Mapping[str, Any], chunk: int) -> list[dict[str, Any]]:
    """Bedrock sends no contentBlockStart for text and reasoning, only for toolUse."""
    events: list[dict[str, Any]] = []
    if "text" in block:
        deltas = [{"text": t} for t in _pieces(block["text"], chunk)]
    elif "toolUse" in block:
        tool = block["toolUse"]
        events.append({"contentBlockStart": {"contentBlockIndex": index, "start": {
            "toolUse": {"toolUseId": tool["toolUseId"], "name": tool["name"]}}}})
        deltas = [{"toolUse": {"input": p}} for p in _pieces(json.dumps(tool["input"]), chunk)]
    elif "reasoningContent" in block:
        reasoning = block["reasoningContent"]
        if "redactedContent" in reasoning:
            deltas = [{"reasoningContent": {"redactedContent": reasoning["redactedContent"]}}]
        else:
            text = reasoning["reasoningText"]
            deltas = [{"reasoningContent": {"text": t}} for t in _pieces(text["text"], chunk)]
            if text.get("signature"):
                deltas.append({"reasoningContent": {"signature": text["signature"]}})
    else:
        raise ValueError(f"unsupported content block: {sorted(block)}")
    events += [{"contentBlockDelta": {"contentBlockIndex": index, "delta": d}} for d in deltas]
    return events + [{"contentBlockStop": {"contentBlockIndex": index}}]


def native_block(block: Mapping[str, Any]) -> dict[str, Any]:
    """A Converse content block -> the native Anthropic block (a block with ``type`` is native already)."""
    if "type" in block:
        return dict(block)
    if "text" in block:
        return {"type": "text", "text": block["text"]}
    if "toolUse" in block:
        tool = block["toolUse"]
        return {"type": "tool_use", "id": tool["toolUseId"], "name": tool["name"], "input": dict(tool["input"])}
    reasoning = block["reasoningContent"]
    if "redactedContent" in reasoning:
        return {"type": "redacted_thinking", "data": base64.b64encode(reasoning["redactedContent"]).decode()}
    text = reasoning["reasoningText"]
    return {"type": "thinking", "thinking": text["text"], "signature": text.get("signature", "")}


def _native_block_events(index: int, block: dict[str, Any], chunk: int) -> list[dict[str, Any]]:
    """content_block_start / _delta... / _stop for one native block, as Anthropic streams it."""
    kind = block["type"]
    if kind == "text":
        start, deltas = {"type": "text", "text": ""}, [{"type": "text_delta", "text": t}
                                                        for t in _pieces(block["text"], chunk)]
    elif kind == "tool_use":
        start = {**block, "input": {}}
        deltas = [{"type": "input_json_delta", "partial_json": p} for p in _pieces(json.dumps(block["input"]), chunk)]
    elif kind == "thinking":
        start = {"type": "thinking", "thinking": "", "signature": ""}
        deltas = [{"type": "thinking_delta", "thinking": t} for t in _pieces(block["thinking"], chunk)]
        if block.get("signature"):
            deltas.append({"type": "signature_delta", "signature": block["signature"]})
    else:  # redacted_thinking, server tool blocks: whole in their start event
        start, deltas = block, []
    return ([{"type": "content_block_start", "index": index, "content_block": start}]
            + [{"type": "content_block_delta", "index": index, "delta": d} for d in deltas]
            + [{"type": "content_block_stop", "index": index}])


def native_stream_reply(*events: dict[str, Any], **options: Any) -> Reply:
    """An invoke-stream reply made of exactly these native events (each one ``chunk``)."""
    return Reply(native_events=tuple(events), **options)


# --- reply helpers --------------------------------------------------------------------------

def text_block(text: str) -> dict[str, Any]:
    return {"text": text}


def tool_use_block(name: str, input: Mapping[str, Any], tool_use_id: str | None = None) -> dict[str, Any]:
    return {"toolUse": {"toolUseId": tool_use_id or f"tooluse_fake{next(_ids):08d}", "name": name,
                        "input": dict(input)}}


def reasoning_block(text: str, signature: str = "ErcBCkgIBhABGAIiQGZha2Utc2lnbmF0dXJl") -> dict[str, Any]:
    return {"reasoningContent": {"reasoningText": {"text": text, "signature": signature}}}


def redacted_reasoning_block(data: bytes) -> dict[str, Any]:
    return {"reasoningContent": {"redactedContent": data}}


def message_reply(*blocks: dict[str, Any], **options: Any) -> Reply:
    return Reply(content=tuple(blocks), **options)


def converse_text(text: str = DEFAULT_TEXT, *, usage: Mapping[str, int] | None = None, **options: Any) -> Reply:
    if usage is not None:
        options["usage"] = dict(usage)
    return message_reply(text_block(text), **options)


def converse_tool_use(name: str, input: Mapping[str, Any], *, text: str | None = None,
                      tool_use_id: str | None = None, **options: Any) -> Reply:
    """Optional lead-in text, then one toolUse block; stopReason "tool_use"."""
    blocks = ([text_block(text)] if text else []) + [tool_use_block(name, input, tool_use_id)]
    return message_reply(*blocks, **options)


def converse_reasoning(text: str, signature: str = "ErcBCkgIBhABGAIiQGZha2Utc2lnbmF0dXJl",
                       then_text: str = DEFAULT_TEXT, **options: Any) -> Reply:
    return message_reply(reasoning_block(text, signature), text_block(then_text), **options)


def stream_text(text: str = DEFAULT_TEXT, *, chunk: int = 8, delay_s: float = 0.0, **options: Any) -> Reply:
    """A text reply streamed ``chunk`` characters per delta, ``delay_s`` between events."""
    return converse_text(text, chunk=chunk, event_delay_s=delay_s, **options)


def stream_tool_use(name: str, input: Mapping[str, Any], *, chunk: int = 8, delay_s: float = 0.0,
                    **options: Any) -> Reply:
    """contentBlockStart with toolUse {toolUseId, name}, then the input JSON in deltas."""
    return converse_tool_use(name, input, chunk=chunk, event_delay_s=delay_s, **options)


def stream_reasoning(text: str, signature: str = "ErcBCkgIBhABGAIiQGZha2Utc2lnbmF0dXJl",
                     then_text: str = DEFAULT_TEXT, *, chunk: int = 8, delay_s: float = 0.0,
                     **options: Any) -> Reply:
    """Reasoning deltas, a signature delta, then a text block."""
    return converse_reasoning(text, signature, then_text, chunk=chunk, event_delay_s=delay_s, **options)


def json_reply(body: Any, status: int = 200, **options: Any) -> Reply:
    return Reply(status=status, json_body=body, **options)


def http_error(status: int | None, error_type: str, message: str, **options: Any) -> Reply:
    """An HTTP error as the service sends it; ``status`` None: the code's usual status."""
    status = status or ERROR_STATUS.get(error_type, 500)
    headers = {"x-amzn-ErrorType": error_type + ERROR_TYPE_SUFFIX, **options.pop("headers", {})}
    return json_reply({"message": message}, status, headers=headers, **options)


def exception_mid_stream(after_events: int, exception_type: str, message: str,
                         reply: Reply | None = None) -> Reply:
    """``reply``'s stream (default: a text reply) cut after ``after_events`` events by an
    exception frame. ``exception_type`` may be the code ("ThrottlingException") or the stream
    member name ("throttlingException"); the member name goes on the wire, as the service does."""
    member = exception_type[:1].lower() + exception_type[1:]
    return replace(reply or stream_text(), exception=(member, message), events_before_exception=after_events)


def disconnect_mid_stream(after_events: int, reply: Reply | None = None) -> Reply:
    return replace(reply or stream_text(), disconnect_after_events=after_events)


def corrupt_mid_stream(after_events: int, kind: str = "crc", reply: Reply | None = None) -> Reply:
    """``reply``'s stream (default: a text reply) with a frame botocore cannot decode after
    ``after_events`` events (0: the very first frame); ``kind`` is ``"crc"`` or ``"garbage"``."""
    if kind not in ("crc", "garbage"):
        raise ValueError(f"unknown corruption: {kind}")
    return replace(reply or stream_text(), corrupt_frame=(after_events, kind))


def corrupt_frame(kind: str, event: dict[str, Any] | None) -> bytes:
    """A frame that fails botocore's checks: ``crc`` flips one payload byte of ``event``'s frame
    (ChecksumMismatch on the message CRC); ``garbage`` is text with no valid prelude."""
    if kind == "garbage":
        return b"<html>502 Bad Gateway</html>\n" * 4
    ((event_type, payload),) = (event or {"messageStart": {"role": "assistant"}}).items()
    frame = bytearray(encode_event(event_type, payload))
    frame[-5] ^= 0xFF  # the last payload byte, just before the message CRC
    return bytes(frame)


# --- request validation (a small part of what Bedrock checks) -------------------------------

MUST_START_WITH_USER = ("A conversation must start with a user message. Try again with a conversation "
                        "that starts with a user message.")


def validation_error(messages: Any) -> str | None:
    """Bedrock's ValidationException message for an obviously bad ``messages``, else None."""
    if not isinstance(messages, list) or not messages:
        return MUST_START_WITH_USER
    roles = [m.get("role") if isinstance(m, dict) else None for m in messages]
    if roles[0] != "user":
        return MUST_START_WITH_USER
    if any(r not in ("user", "assistant") for r in roles) or any(a == b for a, b in zip(roles, roles[1:], strict=False)):
        return ("A conversation must alternate between user and assistant roles. Make sure the "
                "conversation alternates between user and assistant roles and try again.")
    return None


@functools.cache
def _input_shapes() -> dict[str, Any]:
    """botocore's Converse and ConverseStream input shapes, from the proxy's own data loader."""
    from botocore.model import ServiceModel

    from app.bedrock.clients import SERVICE_NAME, data_loader

    model = ServiceModel(data_loader().load_service_model(SERVICE_NAME, "service-2"), SERVICE_NAME)
    return {name: model.operation_model(name).input_shape for name in ("Converse", "ConverseStream")}


def shape_error(recorded: RecordedRequest, body: dict[str, Any]) -> str | None:
    """botocore's parameter validation of a Converse / ConverseStream call as it arrived (the JSON
    body, whose blobs are base64 text, which the validator accepts as it accepts bytes), else None.
    The proxy's client does not validate (app/bedrock/clients.py: CPU), so the fake does."""
    from botocore.validate import ParamValidator

    if (shape := _input_shapes().get(recorded.operation)) is None:
        return None
    report = ParamValidator().validate({"modelId": recorded.model_id, **body}, shape)
    return report.generate_report() if report.has_errors() else None


NATIVE_ANTHROPIC_VERSION = "bedrock-2023-05-31"
TOOL_SEARCH_BETA = "tool-search-tool-2025-10-19"


def count_tokens_invoke_body(recorded: RecordedRequest) -> Any:
    """The native body of a CountTokens call in the ``invokeModel`` form (botocore sends the blob
    base64-encoded in the JSON), parsed; None if it is missing or not JSON."""
    try:
        blob = recorded.json()["input"]["invokeModel"]["body"]
        return json.loads(base64.b64decode(blob))
    except (KeyError, TypeError, ValueError):
        return None


def native_body_error(body: Any) -> str | None:
    """Bedrock's ValidationException message for a native (InvokeModel) Anthropic body it would
    refuse, else None: the checks the proxy must satisfy (a small part of Bedrock's)."""
    if not isinstance(body, dict):
        return "Malformed input request: expected a JSON object"
    if body.get("anthropic_version") != NATIVE_ANTHROPIC_VERSION:
        return "Malformed input request: #: required key [anthropic_version] not found"
    for extra in ("model", "stream", "tags", "service_tier", "container", "mcp_servers", "context_management"):
        if extra in body:
            return f"Malformed input request: #: extraneous key [{extra}] is not permitted"
    if not isinstance(body.get("max_tokens"), int) or body["max_tokens"] < 1:
        return "Malformed input request: #: required key [max_tokens] not found"
    budget = (body.get("thinking") or {}).get("budget_tokens") or 0
    if budget and body["max_tokens"] <= budget:
        return "max_tokens must be greater than thinking.budget_tokens"
    if "tools" in body and not body["tools"]:
        return "tools: List should have at least 1 item after validation, not 0"
    tool_search = TOOL_SEARCH_BETA in (body.get("anthropic_beta") or [])
    for index, tool in enumerate(body.get("tools") or []):
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind not in (None, "custom") and not (tool_search and str(kind).startswith("tool_search_tool_")):
            return f"tools.{index}: Input tag '{kind}' found using 'type' does not match any of the expected tags"
        if isinstance(tool, dict) and "defer_loading" in tool and not tool_search:
            return f"tools.{index}.custom.defer_loading: Extra inputs are not permitted"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or not isinstance(messages[0], dict) \
            or messages[0].get("role") != "user":
        return MUST_START_WITH_USER
    if any(not isinstance(m, dict) or m.get("role") not in ("user", "assistant") or not m.get("content")
           for m in messages):
        return "messages: each message needs role user or assistant and non-empty content"
    return None


# --- the ASGI app -----------------------------------------------------------------------------

class _ReplyResponse(Response):
    """Sends a Reply by hand, so it can stall, pace events, and drop the connection midway."""

    def __init__(self, reply: Reply, operation: str, closing: threading.Event,
                 on_disconnect: Callable[[], None] = lambda: None) -> None:
        self.reply, self.operation, self.closing = reply, operation, closing
        self.on_disconnect = on_disconnect

    async def _pause(self, seconds: float, receive: Receive) -> bool:
        """Sleep up to ``seconds``; False if the client left or the fake is shutting down."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while (remaining := deadline - loop.time()) > 0:
            if self.closing.is_set():
                return False
            try:
                if (await asyncio.wait_for(receive(), min(remaining, 0.05)))["type"] == "http.disconnect":
                    self.on_disconnect()
                    return False
            except TimeoutError:
                pass
        return True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        reply = self.reply
        if reply.stall_s and not await self._pause(reply.stall_s, receive):
            return
        headers = {"x-amzn-requestid": f"fake-{next(_ids):08d}", **reply.headers}
        if reply.json_body is not None or self.operation not in STREAM_OPERATIONS or reply.status != 200:
            body = reply.json_body if reply.json_body is not None else (
                reply.native_body() if self.operation == "InvokeModel" else reply.converse_body())
            await send({"type": "http.response.start", "status": reply.status, "headers": [
                (b"content-type", b"application/json"),
                *((k.lower().encode(), v.encode()) for k, v in headers.items())]})
            await send({"type": "http.response.body", "body": json_payload(body)})
            return
        headers["content-type"] = EVENTSTREAM_CONTENT_TYPE
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]})
        events = (reply.invoke_stream_events() if self.operation == "InvokeModelWithResponseStream"
                  else reply.stream_events())
        if reply.exception is not None and reply.events_before_exception is not None:
            events = events[:reply.events_before_exception]
        if reply.corrupt_frame is not None:
            after, kind = reply.corrupt_frame
            bad = corrupt_frame(kind, events[after] if after < len(events) else None)
            events = events[:after]
        for index, event in enumerate(events):
            if reply.disconnect_after_events is not None and index >= reply.disconnect_after_events:
                return  # no final empty chunk: the server closes the socket mid-body
            if (delay := reply.delay_before(index)) and not await self._pause(delay, receive):
                return
            ((event_type, payload),) = event.items()
            await send({"type": "http.response.body", "body": encode_event(event_type, payload), "more_body": True})
        if reply.exception is not None:
            await send({"type": "http.response.body", "body": encode_exception(*reply.exception), "more_body": True})
        if reply.corrupt_frame is not None:
            await send({"type": "http.response.body", "body": bad, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})



class FakeBedrock(FakeServer[RecordedRequest, "Reply"]):
    """ASGI app. ``requests`` lists every RecordedRequest in arrival order. Each call takes the
    first scripted entry whose ``when`` matches, else ``default`` (a Reply, or a function
    RecordedRequest -> Reply); CountTokens without a script answers ``count_tokens_input_tokens``.
    With ``validate`` on, bad ``messages`` get a ValidationException; with ``bearer_token`` set,
    a call without ``Authorization: Bearer <it>`` gets an AccessDeniedException (403)."""

    def __init__(self, *, default: Reply | Callable[[RecordedRequest], Reply] | None = None,
                 count_tokens_input_tokens: int = 42, validate: bool = True,
                 bearer_token: str | None = None) -> None:
        super().__init__()
        self.default = default or converse_text()
        self.count_tokens_input_tokens = count_tokens_input_tokens
        self.validate = validate
        self.bearer_token = bearer_token
        self.disconnects = 0  # responses whose client went away during a stall or event delay
        self._app = Starlette(routes=[
            Route("/model/{model_id:path}/{action:str}", self._model, methods=["POST"]),
            Route("/{path:path}", self._not_found, methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]),
        ])

    default_when = staticmethod(any_call)

    def reset(self) -> None:
        """Forget recorded calls, scripted replies and the disconnect count."""
        super().reset()
        with self._lock:
            self.disconnects = 0

    def calls(self, operation: str) -> list[RecordedRequest]:
        """Recorded calls of one operation ("Converse", "ConverseStream", "CountTokens", "InvokeModel",
        "InvokeModelWithResponseStream")."""
        return [r for r in self.requests if r.operation == operation]

    def _check(self, recorded: RecordedRequest) -> Reply | None:
        """An error Reply for an unauthorized or (with ``validate``) invalid call, else None."""
        if self.bearer_token is not None and recorded.header("authorization") != f"Bearer {self.bearer_token}":
            return http_error(403, "AccessDeniedException",
                              "Authentication failed: Please make sure your API Key is valid.")
        try:
            body = recorded.json()
        except ValueError:
            return http_error(400, "SerializationException", "Could not parse the request body.")
        if not self.validate or not isinstance(body, dict):
            return None
        if recorded.operation in INVOKE_OPERATIONS or (
                recorded.operation == "CountTokens" and "invokeModel" in (body.get("input") or {})):
            native = body if recorded.operation in INVOKE_OPERATIONS else count_tokens_invoke_body(recorded)
            if (message := native_body_error(native)) is not None:
                return http_error(400, "ValidationException", message)
            return None  # the native API merges consecutive turns of one role: no alternation rule
        else:
            messages = body.get("messages") if recorded.operation != "CountTokens" else (
                (body.get("input") or {}).get("converse") or {}).get("messages")
        if (message := validation_error(messages)) is not None:
            return http_error(400, "ValidationException", message)
        if (message := shape_error(recorded, body)) is not None:
            return http_error(400, "ValidationException", message)
        return None

    async def _model(self, request: Request) -> Response:
        action = request.path_params["action"]
        raw_path = request.scope.get("raw_path", b"").decode("latin-1") or request.url.path
        # Decode from the raw path: an ARN's "%2F" must not split the route.
        raw_model = raw_path.removeprefix("/model/").rsplit("/", 1)[0]
        recorded = RecordedRequest(
            operation=OPERATIONS.get(action, action), model_id=unquote(raw_model), raw_path=raw_path,
            headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.scope["headers"]],
            body=await request.body())
        self._append(recorded)
        if action not in OPERATIONS:
            return _ReplyResponse(http_error(404, "UnknownOperationException", f"Unknown operation {action}"),
                                  recorded.operation, self.closing)
        reply = self._check(recorded) or self._script.take(recorded)
        if reply is None and recorded.operation == "CountTokens":
            reply = json_reply({"inputTokens": self.count_tokens_input_tokens})
        if reply is None:
            reply = self.default(recorded) if callable(self.default) else self.default
        return _ReplyResponse(reply, recorded.operation, self.closing, self._count_disconnect)

    def _count_disconnect(self) -> None:
        with self._lock:
            self.disconnects += 1

    async def _not_found(self, request: Request) -> Response:
        return JSONResponse({"message": f"Not found: {request.url.path}"}, 404,
                            headers={"x-amzn-ErrorType": "UnknownOperationException" + ERROR_TYPE_SUFFIX})


def running_fake_bedrock(**options: Any) -> AbstractContextManager[FakeBedrock]:
    """A FakeBedrock(**options) served on 127.0.0.1; ``.url`` is its base URL (no trailing /),
    to pass as BedrockClients(endpoint_url=...) / Settings(bedrock_endpoint_url=...)."""
    return FakeBedrock.running(**options)
