"""ConverseStream events -> Anthropic Messages stream events (a sans-I/O state machine).

In: botocore-parsed events, one key each: ``messageStart``, ``contentBlockStart`` (toolUse only),
``contentBlockDelta`` (text | toolUse.input | reasoningContent.{text, signature, redactedContent}),
``contentBlockStop``, ``messageStop {stopReason}``, ``metadata {usage, metrics}``.
Out: ``message_start``, ``content_block_start/delta/stop``, ``message_delta``, ``message_stop``.

Rules: Converse opens only toolUse blocks explicitly, so text and reasoning blocks are opened on
their first non-empty delta (an empty text block is never emitted); Anthropic indices count the
blocks actually emitted, so they may differ from ``contentBlockIndex``. Redacted reasoning arrives
as bytes and goes out as one ``redacted_thinking`` block (start + stop) with base64 ``data``.
``message_delta`` waits for ``metadata`` (the only event with usage) or ``finish()``.
An event whose fields have the wrong types (a toolUse start without ``toolUseId``, a text delta
that is not a string, usage counts that are not integers) raises ``MalformedResponse`` (502) from
``feed``; the translator's state stays as it was, so ``usage`` never raises.
Sources: https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ConverseStream.html,
https://docs.anthropic.com/en/api/messages-streaming
"""

from __future__ import annotations

import json
from typing import Any

from app.bedrock.response import b64encode, expect, to_stop_reason, to_stop_sequence, to_usage
from app.bedrock.tool_ids import from_bedrock_id

Event = dict[str, Any]


# One encoder for every event: ``json.dumps`` with non-default options builds a new JSONEncoder per
# call, about a third of this function's cost (issue 16).
_to_json = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def encode_sse(event: Event) -> bytes:
    """``{"type": "ping"}`` -> ``b'event: ping\\ndata: {"type":"ping"}\\n\\n'`` (compact UTF-8 JSON)."""
    return f"event: {event['type']}\ndata: {_to_json(event)}\n\n".encode()


def ping_event() -> bytes:
    """Anthropic's keep-alive frame."""
    return encode_sse({"type": "ping"})


def _index(event: Event) -> int:
    return expect(event.get("contentBlockIndex", 0), int, "contentBlockIndex")


class StreamTranslator:
    """``feed(converse_event) -> [anthropic_event]``; ``finish()`` once at the end; ``usage`` any time."""

    def __init__(self, model: str, message_id: str, *, stop_sequences: list[str] | None = None,
                 omit_thinking: bool = False) -> None:
        self._model, self._message_id = model, message_id
        self._stop_sequences = stop_sequences
        self._omit_thinking = omit_thinking  # thinking.display "omitted": no thinking_delta, signature kept
        self._started = self._stopped = False
        self._index = -1  # Anthropic index of the last block opened
        self._open: tuple[int, str] | None = None  # (contentBlockIndex, kind) of the open block
        self._redacted: tuple[int, bytearray] | None = None  # pending redacted reasoning bytes
        self._stop_reason: str | None = None
        self._stop_fields: Any = None
        self._usage: dict[str, Any] | None = None

    @property
    def usage(self) -> dict[str, int]:
        """Anthropic usage so far (tokens); zeros until ``metadata`` arrives."""
        usage = to_usage(self._usage)
        return {k: usage[k] for k in ("input_tokens", "output_tokens", "cache_read_input_tokens",
                                      "cache_creation_input_tokens")}

    @property
    def cache_creation(self) -> dict[str, int]:
        """``{ephemeral_5m_input_tokens, ephemeral_1h_input_tokens}`` so far (tokens; Bedrock's cacheDetails)."""
        return to_usage(self._usage)["cache_creation"]

    def feed(self, event: Event) -> list[Event]:
        """One ConverseStream event -> the Anthropic events it completes (possibly none).
        Raises MalformedResponse (see the module doc)."""
        if self._stopped:
            return []
        expect(event, dict, "stream event")
        out = self._start()
        if "contentBlockStart" in event:
            start = expect(event["contentBlockStart"], dict, "contentBlockStart")
            tool = expect(start.get("start") or {}, dict, "contentBlockStart.start").get("toolUse")
            if tool:
                tool = expect(tool, dict, "contentBlockStart.start.toolUse")
                block = {"type": "tool_use",
                         "id": from_bedrock_id(expect(tool.get("toolUseId"), str, "toolUse.toolUseId")),
                         "name": expect(tool.get("name"), str, "toolUse.name"), "input": {}}
                out += self._open_block(_index(start), "tool_use", block)
        elif "contentBlockDelta" in event:
            out += self._delta(expect(event["contentBlockDelta"], dict, "contentBlockDelta"))
        elif "contentBlockStop" in event:
            index = _index(expect(event["contentBlockStop"], dict, "contentBlockStop"))
            if self._open and self._open[0] == index:
                out += self._close()
            if self._redacted and self._redacted[0] == index:
                out += self._flush_redacted()
        elif "messageStop" in event:
            stop = expect(event["messageStop"], dict, "messageStop")
            stop_reason = to_stop_reason(expect(stop.get("stopReason"), (str, type(None)), "messageStop.stopReason"))
            out += self._close() + self._flush_redacted()
            self._stop_reason = stop_reason
            self._stop_fields = stop.get("additionalModelResponseFields")
        elif "metadata" in event:
            usage = expect(event["metadata"], dict, "metadata").get("usage") or {}
            to_usage(usage)  # raises MalformedResponse before it is kept
            self._usage = usage
            if self._stop_reason is not None:
                out += self._end()
        return out

    def finish(self) -> list[Event]:
        """Close whatever is open and end the message (``message_delta`` + ``message_stop``) if that
        has not happened; a stream cut short still ends properly. Safe to call more than once."""
        if self._stopped:
            return []
        return self._start() + self._close() + self._flush_redacted() + self._end()

    def _start(self) -> list[Event]:
        if self._started:
            return []
        self._started = True
        message: dict[str, Any] = {"id": self._message_id, "type": "message", "role": "assistant", "model": self._model,
                   "content": [], "stop_reason": None, "stop_sequence": None,
                   "usage": {"input_tokens": 0, "output_tokens": 0, "cache_creation_input_tokens": 0,
                             "cache_read_input_tokens": 0}}
        return [{"type": "message_start", "message": message}]

    def _delta(self, event: Event) -> list[Event]:
        index, delta = _index(event), expect(event.get("delta") or {}, dict, "contentBlockDelta.delta")
        if delta.get("text"):
            return self._ensure(index, "text", {"type": "text", "text": ""}) + [
                self._block_delta({"type": "text_delta", "text": expect(delta["text"], str, "delta.text")})]
        if "toolUse" in delta:
            partial = expect(expect(delta["toolUse"] or {}, dict, "delta.toolUse").get("input") or "", str,
                             "delta.toolUse.input")
            if not partial or self._open != (index, "tool_use"):
                return []  # input for a tool block Converse never announced: nothing valid to attach it to
            return [self._block_delta({"type": "input_json_delta", "partial_json": partial})]
        reasoning = expect(delta.get("reasoningContent") or {}, dict, "delta.reasoningContent")
        if "redactedContent" in reasoning:
            data = expect(reasoning["redactedContent"], (bytes, str), "reasoningContent.redactedContent")
            out = self._close()
            if self._redacted is None or self._redacted[0] != index:
                out += self._flush_redacted()
                self._redacted = (index, bytearray())
            self._redacted[1].extend(data.encode() if isinstance(data, str) else data)
            return out
        if reasoning.get("text"):
            opened = self._ensure(index, "thinking", {"type": "thinking", "thinking": "", "signature": ""})
            text = expect(reasoning["text"], str, "reasoningContent.text")
            if self._omit_thinking:
                return opened
            return opened + [self._block_delta({"type": "thinking_delta", "thinking": text})]
        if reasoning.get("signature"):
            return self._ensure(index, "thinking", {"type": "thinking", "thinking": "", "signature": ""}) + [
                self._block_delta({"type": "signature_delta",
                                   "signature": expect(reasoning["signature"], str, "reasoningContent.signature")})]
        return []  # empty text, citations: nothing to emit

    def _ensure(self, index: int, kind: str, block: Event) -> list[Event]:
        if self._open == (index, kind):
            return []
        return self._open_block(index, kind, block)

    def _open_block(self, index: int, kind: str, block: Event) -> list[Event]:
        out = self._close() + self._flush_redacted()
        self._index += 1
        self._open = (index, kind)
        return out + [{"type": "content_block_start", "index": self._index, "content_block": block}]

    def _block_delta(self, delta: Event) -> Event:
        return {"type": "content_block_delta", "index": self._index, "delta": delta}

    def _close(self) -> list[Event]:
        if self._open is None:
            return []
        self._open = None
        return [{"type": "content_block_stop", "index": self._index}]

    def _flush_redacted(self) -> list[Event]:
        if self._redacted is None:
            return []
        data, self._redacted = bytes(self._redacted[1]), None
        if not data:
            return []
        self._index += 1
        block = {"type": "redacted_thinking", "data": b64encode(data)}
        return [{"type": "content_block_start", "index": self._index, "content_block": block},
                {"type": "content_block_stop", "index": self._index}]

    def _end(self) -> list[Event]:
        self._stopped = True
        stop_reason = self._stop_reason or "end_turn"
        usage = self.usage
        delta_usage: dict[str, Any] = {
            "input_tokens": usage["input_tokens"], "output_tokens": usage["output_tokens"],
            "cache_creation_input_tokens": usage["cache_creation_input_tokens"],
            "cache_read_input_tokens": usage["cache_read_input_tokens"]}
        if (cache_creation := self.cache_creation)["ephemeral_1h_input_tokens"]:
            # Bedrock reports usage only at the end, so the 1h/5m split of cache writes travels here
            # (as Message.usage.cache_creation; app/proxy/usage_tap.py reads it for pricing).
            delta_usage["cache_creation"] = cache_creation
        return [{"type": "message_delta",
                 "delta": {"stop_reason": stop_reason,
                           "stop_sequence": to_stop_sequence(stop_reason, self._stop_fields, self._stop_sequences)},
                 "usage": delta_usage},
                {"type": "message_stop"}]
