"""InvokeModel answers -> what the client sees (pure; no I/O).

The native answer is already Anthropic's shape; the proxy only makes it the client's:
``id`` = ``new_message_id()`` (``msg_bdrk_…``, as on the Converse path), ``model`` = the id the
client asked for (never Bedrock's), ``tool_use.id`` through ``tool_ids.from_bedrock_id`` (the
request's ids went out through ``to_bedrock_id``), ``thinking: ""`` when the request had
``thinking.display: "omitted"``, and nothing Bedrock adds (``amazon-bedrock-invocationMetrics``).

- ``to_client_message(native, ...)``: InvokeModel's JSON body -> the Message the client gets.
- ``InvokeStreamTranslator.feed(event)``: one InvokeModelWithResponseStream event in botocore's
  shape (``{"chunk": {"bytes": b'<one native stream event as JSON>'}}``) -> the events to send.
  ``message_delta`` is held until ``message_stop``, whose ``amazon-bedrock-invocationMetrics``
  (``inputTokenCount``, ``outputTokenCount``, ``cacheReadInputTokenCount``,
  ``cacheWriteInputTokenCount``) fill in a usage counter the native events did not report (the native
  counters win); the metrics themselves never reach the client.

Anything that is not such a body / event (not JSON, not an object, a ``type`` or tool id that is not
a string, usage counts that are not non-negative integers) raises ``MalformedResponse`` (502).
Sources: https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-anthropic-claude-messages-request-response.html,
https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_InvokeModelWithResponseStream.html,
https://docs.anthropic.com/en/api/messages-streaming
"""

from __future__ import annotations

import json
from typing import Any

from app.bedrock.response import MalformedResponse, expect
from app.bedrock.tool_ids import from_bedrock_id

Event = dict[str, Any]
METRICS_KEY = "amazon-bedrock-invocationMetrics"
USAGE_COUNTERS = ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
# Message fields the client gets (the native body's; anything else Bedrock adds stays out).
MESSAGE_FIELDS = ("id", "type", "role", "model", "content", "stop_reason", "stop_sequence", "usage")
# invocationMetrics counter -> the usage counter it stands in for.
METRIC_COUNTERS = {"inputTokenCount": "input_tokens", "outputTokenCount": "output_tokens",
                   "cacheReadInputTokenCount": "cache_read_input_tokens",
                   "cacheWriteInputTokenCount": "cache_creation_input_tokens"}


def to_client_message(native: Any, *, model: str, message_id: str, omit_thinking: bool = False) -> dict[str, Any]:
    """InvokeModel's parsed JSON body -> the client's Message dict (module doc). Raises MalformedResponse."""
    expect(native, dict, "response")
    content = expect(native.get("content"), list, "content")
    message: dict[str, Any] = {k: native[k] for k in MESSAGE_FIELDS if k in native}
    message.update(id=message_id, type="message", role="assistant", model=model,
                   content=[_block(expect(b, dict, "content block"), omit_thinking) for b in content],
                   stop_reason=native.get("stop_reason"), stop_sequence=native.get("stop_sequence"),
                   usage=_usage(native.get("usage"), "usage"))
    return message


def parse_chunk(event: Any) -> Event:
    """``{"chunk": {"bytes": b'{...}'}}`` -> the native event dict. Raises MalformedResponse."""
    chunk = expect(expect(event, dict, "stream event").get("chunk"), dict, "chunk")
    data = expect(chunk.get("bytes"), (bytes, str), "chunk.bytes")
    try:
        native = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise MalformedResponse("chunk.bytes: not JSON") from None
    expect(expect(native, dict, "chunk.bytes").get("type"), str, "chunk.bytes.type")
    return native


class InvokeStreamTranslator:
    """``feed(event) -> [anthropic_event]``; ``finish()`` once at the end; ``usage`` any time."""

    def __init__(self, model: str, message_id: str, *, omit_thinking: bool = False) -> None:
        self._model, self._message_id, self._omit_thinking = model, message_id, omit_thinking
        self._usage: dict[str, Any] = {}  # native counters seen (message_start, then message_delta)
        self._held: Event | None = None  # the message_delta, until message_stop
        self._stopped = False

    @property
    def usage(self) -> dict[str, int]:
        """The four usage counters so far (tokens; 0 for one not reported yet)."""
        return {k: self._usage.get(k) or 0 for k in USAGE_COUNTERS}

    def feed(self, event: Any) -> list[Event]:
        """One botocore event -> the events it completes. Raises MalformedResponse (the state stays)."""
        if self._stopped:
            return []
        native = parse_chunk(event)
        kind = native["type"]
        if kind == "message_start":
            message = expect(native.get("message"), dict, "message_start.message")
            usage = _usage(message.get("usage"), "message_start.message.usage")
            content = [_block(expect(b, dict, "content block"), self._omit_thinking)
                       for b in expect(message.get("content") or [], list, "message_start.message.content")]
            self._usage.update(usage)
            return [{**native, "message": {**message, "id": self._message_id, "model": self._model,
                                           "content": content, "usage": usage}}]
        if kind == "content_block_start":
            block = expect(native.get("content_block"), dict, "content_block_start.content_block")
            return [{**native, "content_block": _block(block, self._omit_thinking)}]
        if kind == "content_block_delta":
            delta = expect(native.get("delta"), dict, "content_block_delta.delta")
            return [] if self._omit_thinking and delta.get("type") == "thinking_delta" else [native]
        if kind == "message_delta":
            usage = _usage(native.get("usage"), "message_delta.usage") if "usage" in native else {}
            self._usage.update({k: v for k, v in usage.items() if k in USAGE_COUNTERS})
            out, self._held = self._release(), {**native, **({"usage": usage} if "usage" in native else {})}
            return out
        if kind == "message_stop":
            metrics = native.get(METRICS_KEY)
            self._fill_from_metrics(metrics if isinstance(metrics, dict) else {})
            self._stopped = True
            return self._release() + [{k: v for k, v in native.items() if k != METRICS_KEY}]
        return [{k: v for k, v in native.items() if k != METRICS_KEY}]  # ping, error, anything newer

    def finish(self) -> list[Event]:
        """The held ``message_delta`` of a stream that ended without ``message_stop`` (the relay
        then reports the cut). Safe to call more than once."""
        return self._release()

    def _release(self) -> list[Event]:
        held, self._held = self._held, None
        return [] if held is None else [held]

    def _fill_from_metrics(self, metrics: dict[str, Any]) -> None:
        missing = {}
        for metric, counter in METRIC_COUNTERS.items():
            value = metrics.get(metric)
            if counter not in self._usage and isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                missing[counter] = value
        if not missing:
            return
        self._usage.update(missing)
        if self._held is None:
            self._held = {"type": "message_delta", "delta": {"stop_reason": None, "stop_sequence": None}, "usage": {}}
        self._held = {**self._held, "usage": {**(self._held.get("usage") or {}), **missing}}


def _block(block: dict[str, Any], omit_thinking: bool) -> dict[str, Any]:
    """A native content block as the client gets it: tool-use ids back to the client's, thinking
    text emptied when omitted."""
    if block.get("type") == "tool_use":
        return {**block, "id": from_bedrock_id(expect(block.get("id"), str, "tool_use.id"))}
    if block.get("type") == "thinking" and omit_thinking:
        return {**block, "thinking": ""}
    return block


def _usage(usage: Any, where: str) -> dict[str, Any]:
    """A native ``usage`` object, its counters checked (non-negative integers; null = absent)."""
    usage = expect(usage or {}, dict, where)
    out = {k: v for k, v in usage.items() if v is not None}
    for counter in USAGE_COUNTERS:
        if counter in out and expect(out[counter], int, f"{where}.{counter}") < 0:
            raise MalformedResponse(f"{where}.{counter}: negative")
    return out
