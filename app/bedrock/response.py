"""Bedrock Converse response -> Anthropic Message JSON (pure).

In: botocore's parsed ``converse`` output ``{output: {message: {role, content}}, stopReason, usage,
additionalModelResponseFields?, metrics}`` (binary fields are ``bytes``). Out: ``{id, type: message,
role: assistant, model, content, stop_reason, stop_sequence, usage}`` with ``model`` = the id the
client asked for, never the Bedrock id.
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

_ALPHABET = string.ascii_letters + string.digits


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
    message = (response.get("output") or {}).get("message") or {}
    content = [b for b in (to_content_block(block) for block in message.get("content") or []) if b]
    if omit_thinking:
        content = [{**b, "thinking": ""} if b["type"] == "thinking" else b for b in content]
    stop_reason = to_stop_reason(response.get("stopReason"))
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
    (empty text, citationsContent metadata, cachePoint)."""
    if "text" in block:
        return {"type": "text", "text": block["text"]} if block["text"] else None
    if "toolUse" in block:
        tool = block["toolUse"]
        return {"type": "tool_use", "id": from_bedrock_id(tool["toolUseId"]), "name": tool["name"],
                "input": tool.get("input") or {}}
    if "reasoningContent" in block:
        reasoning = block["reasoningContent"]
        if "redactedContent" in reasoning:
            return {"type": "redacted_thinking", "data": b64encode(reasoning["redactedContent"])}
        text = reasoning.get("reasoningText") or {}
        return {"type": "thinking", "thinking": text.get("text", ""), "signature": text.get("signature", "")}
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
    """``{inputTokens, outputTokens, cacheReadInputTokens?, cacheWriteInputTokens?}`` -> Anthropic usage
    (tokens). Bedrock cache writes use the default 5-minute TTL, so they count as ephemeral_5m."""
    usage = usage or {}
    cache_write = int(usage.get("cacheWriteInputTokens") or 0)
    return {
        "input_tokens": int(usage.get("inputTokens") or 0),
        "output_tokens": int(usage.get("outputTokens") or 0),
        "cache_creation_input_tokens": cache_write,
        "cache_read_input_tokens": int(usage.get("cacheReadInputTokens") or 0),
        "cache_creation": {"ephemeral_5m_input_tokens": cache_write, "ephemeral_1h_input_tokens": 0},
    }


def b64encode(data: bytes | str) -> str:
    """Redacted reasoning bytes -> the base64 ``data`` string Anthropic uses for redacted_thinking."""
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode("ascii")
