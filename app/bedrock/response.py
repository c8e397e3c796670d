"""Bedrock Converse response -> Anthropic Message JSON (pure).

In: botocore's parsed ``converse`` output ``{output: {message: {role, content}}, stopReason, usage,
additionalModelResponseFields?, metrics}`` (binary fields are ``bytes``). Out: ``{id, type: message,
role: assistant, model, content, stop_reason, stop_sequence, usage}`` with ``model`` = the id the
client asked for, never the Bedrock id.

A body that is not a Converse response (no ``output.message``, ``content`` not a list of objects,
a block's fields of the wrong type, a ``stopReason`` that is not a string, ``usage`` counts that are
not non-negative integers) raises ``MalformedResponse`` (502 ``api_error``), never a KeyError or
TypeError. botocore trusts the service model and passes such values through as they came.
Sources: https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html,
https://docs.anthropic.com/en/api/messages
"""

from __future__ import annotations

import base64
import secrets
import string
from typing import Any

from app.bedrock.shapes import STOP_REASONS
from app.bedrock.tool_ids import from_bedrock_id
from app.errors import UpstreamUnavailable

_ALPHABET = string.ascii_letters + string.digits


class MalformedResponse(UpstreamUnavailable):
    """Bedrock answered with something that is not a Converse response / stream event (502)."""

    def __init__(self, where: str) -> None:
        super().__init__(f"Bedrock: malformed response ({where})")


def expect(value: Any, kind: type | tuple[type, ...], where: str) -> Any:
    """``value`` if it is a ``kind`` (a bool is never an int here), else raise MalformedResponse."""
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, kinds) and (bool in kinds or not isinstance(value, bool)):
        return value
    expected = " or ".join(k.__name__ for k in kinds)
    raise MalformedResponse(f"{where}: expected {expected}, got {type(value).__name__}")


def new_message_id() -> str:
    """``"msg_bdrk_" + 24 random base62 characters``."""
    return "msg_bdrk_" + "".join(secrets.choice(_ALPHABET) for _ in range(24))


def to_message(response: dict[str, Any], *, model: str, message_id: str | None = None,
               stop_sequences: list[str] | None = None, omit_thinking: bool = False) -> dict[str, Any]:
    """Converse response -> Anthropic ``Message`` dict.

    ``stop_sequences`` (the request's, optional) names the matched sequence when Converse did not
    return the native ``stop_sequence`` field (the request asks for it via
    additionalModelResponseFieldPaths) and only one sequence could have matched.
    ``omit_thinking`` (the request had ``thinking.display: "omitted"``): thinking blocks keep their
    signature and get ``thinking: ""``, as Anthropic returns them.
    """
    expect(response, dict, "response")
    message = expect(expect(response.get("output"), dict, "output").get("message"), dict, "output.message")
    blocks = expect(message.get("content"), list, "output.message.content")
    content = [b for b in (to_content_block(expect(block, dict, "content block")) for block in blocks) if b]
    if omit_thinking:
        content = [{**b, "thinking": ""} if b["type"] == "thinking" else b for b in content]
    stop_reason = to_stop_reason(expect(response.get("stopReason"), (str, type(None)), "stopReason"))
    return {
        "id": message_id or new_message_id(),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": to_stop_sequence(stop_reason, response.get("additionalModelResponseFields"), stop_sequences),
        "usage": to_usage(response.get("usage")),
    }


def to_content_block(block: dict[str, Any]) -> dict[str, Any] | None:
    """One Converse content block -> Anthropic block, or None for ones with no Anthropic form
    (empty text, citationsContent metadata, cachePoint). Raises MalformedResponse."""
    if "text" in block:
        text = expect(block["text"], str, "text")
        return {"type": "text", "text": text} if text else None
    if "toolUse" in block:
        tool = expect(block["toolUse"], dict, "toolUse")
        return {"type": "tool_use", "id": from_bedrock_id(expect(tool.get("toolUseId"), str, "toolUse.toolUseId")),
                "name": expect(tool.get("name"), str, "toolUse.name"), "input": tool.get("input") or {}}
    if "reasoningContent" in block:
        reasoning = expect(block["reasoningContent"], dict, "reasoningContent")
        if "redactedContent" in reasoning:
            data = expect(reasoning["redactedContent"], (bytes, str), "reasoningContent.redactedContent")
            return {"type": "redacted_thinking", "data": b64encode(data)}
        text = expect(reasoning.get("reasoningText") or {}, dict, "reasoningContent.reasoningText")
        return {"type": "thinking", "thinking": expect(text.get("text", ""), str, "reasoningText.text"),
                "signature": expect(text.get("signature", ""), str, "reasoningText.signature")}
    return None


def to_stop_reason(stop_reason: str | None) -> str | None:
    """Converse stopReason -> Anthropic stop_reason (guardrail_intervened/content_filtered -> refusal);
    an unknown future value becomes ``end_turn``."""
    if stop_reason is None:
        return None
    return STOP_REASONS.get(stop_reason, "end_turn")


def to_stop_sequence(stop_reason: str | None, fields: Any, stop_sequences: list[str] | None) -> str | None:
    """The stop sequence that matched, when ``stop_reason`` is ``stop_sequence`` and it is knowable."""
    if stop_reason != "stop_sequence":
        return None
    if isinstance(fields, dict) and isinstance(fields.get("stop_sequence"), str):
        return fields["stop_sequence"]
    candidates = [s for s in stop_sequences or [] if s]
    return candidates[0] if len(candidates) == 1 else None


def to_usage(usage: dict[str, Any] | None) -> dict[str, Any]:
    """``{inputTokens, outputTokens, cacheReadInputTokens?, cacheWriteInputTokens?, cacheDetails?}`` ->
    Anthropic usage (tokens). ``cacheDetails`` (``[{ttl: "5m"|"1h", inputTokens}]``, Bedrock's cache
    writes by TTL) gives ``cache_creation.ephemeral_1h_input_tokens``; the rest of the writes are
    ephemeral_5m (all of them when Bedrock sends no details: its default TTL is 5 minutes).
    Raises MalformedResponse for a ``usage`` that is not an object or a count that is not a
    non-negative integer (missing or null counts are 0). Source: TokenUsage in the bedrock-runtime model."""
    usage = expect(usage or {}, dict, "usage")
    cache_write = _count(usage, "cacheWriteInputTokens")
    one_hour = min(_one_hour_writes(usage.get("cacheDetails")), cache_write)
    return {
        "input_tokens": _count(usage, "inputTokens"),
        "output_tokens": _count(usage, "outputTokens"),
        "cache_creation_input_tokens": cache_write,
        "cache_read_input_tokens": _count(usage, "cacheReadInputTokens"),
        "cache_creation": {"ephemeral_5m_input_tokens": cache_write - one_hour, "ephemeral_1h_input_tokens": one_hour},
    }


def _one_hour_writes(details: Any) -> int:
    """The ``inputTokens`` of ``cacheDetails`` entries with ``ttl: "1h"`` (tokens). Raises MalformedResponse."""
    total = 0
    for detail in expect(details or [], list, "usage.cacheDetails"):
        detail = expect(detail, dict, "usage.cacheDetails[]")
        if detail.get("ttl") == "1h":
            total += _count(detail, "inputTokens")
    return total


def _count(usage: dict[str, Any], name: str) -> int:
    value = usage.get(name)
    if value is None:
        return 0
    if expect(value, int, f"usage.{name}") < 0:
        raise MalformedResponse(f"usage.{name}: negative")
    return value


def b64encode(data: bytes | str) -> str:
    """Redacted reasoning bytes -> the base64 ``data`` string Anthropic uses for redacted_thinking."""
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode("ascii")
