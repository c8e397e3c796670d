"""Anthropic Messages params -> the native body Bedrock's InvokeModel family takes (pure; no I/O).

Used for CountTokens' ``invokeModel`` input (``{"body": <JSON bytes>}``), which, unlike its
``converse`` input (messages and system only: botocore's ``ConverseTokensRequest`` has no
``toolConfig``), counts tool definitions too.

The body is the Messages params with ``anthropic_version: "bedrock-2023-05-31"`` and:
- only the top-level fields in ``INVOKE_FIELDS`` (``model`` is the URL's ``modelId``; ``stream`` is
  the operation; Anthropic-hosted features such as ``container``, ``mcp_servers``, ``service_tier``,
  ``context_management`` and request ``tags`` are refused by Bedrock);
- betas in ``anthropic_beta`` (the body field, not the header), filtered as for Converse;
- ``thinking`` as the model takes it (adaptive-only models, ``display`` dropped);
- no empty ``tools``; no server tools or blocks they produced (Bedrock cannot run or replay them);
- tool-use ids in Bedrock's alphabet (``tool_ids.to_bedrock_id``, as on the Converse path);
- a mid-conversation ``role: "system"`` message sent as the user text ``<system-reminder>`` the
  Converse path sends (``request._system_reminder``), breakpoints kept;
- ``max_tokens`` above any thinking budget (CountTokens validates the body as a request).
Source: https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-anthropic-claude-messages-request-response.html
"""

from __future__ import annotations

import json
from typing import Any

from app.bedrock.cache_ttl import to_native_cache_controls
from app.bedrock.models import BedrockModel
from app.bedrock.request import _system_reminder, to_additional_fields
from app.bedrock.shapes import SERVER_BLOCK_TYPES
from app.bedrock.tool_ids import to_bedrock_id

ANTHROPIC_VERSION = "bedrock-2023-05-31"
# Top-level Messages fields the native Bedrock body carries (everything else is left out).
INVOKE_FIELDS = frozenset({
    "messages", "system", "max_tokens", "temperature", "top_p", "top_k", "stop_sequences", "tools",
    "tool_choice", "thinking", "output_config",
})


def to_invoke_body(params: dict[str, Any], model: BedrockModel, *, betas: list[str]) -> dict[str, Any]:
    """Messages ``params`` -> the InvokeModel body (a dict; :func:`invoke_body_bytes` encodes it).
    Does not mutate ``params``."""
    body: dict[str, Any] = {"anthropic_version": ANTHROPIC_VERSION}
    body.update({k: v for k, v in params.items() if k in INVOKE_FIELDS})
    additional = to_additional_fields(params, model, betas)
    body.pop("thinking", None)
    if "thinking" in additional:
        body["thinking"] = additional["thinking"]
    if "anthropic_beta" in additional:
        body["anthropic_beta"] = additional["anthropic_beta"]
    output_config = additional.get("output_config")
    body.pop("output_config", None)
    if output_config:
        body["output_config"] = output_config
    tools = [t for t in body.pop("tools", None) or [] if t.get("type") in (None, "custom")]
    if tools:
        body["tools"] = [{k: v for k, v in t.items() if k not in ("defer_loading", "eager_input_streaming",
                                                                   "allowed_callers", "input_examples")}
                         for t in tools]
    else:
        body.pop("tool_choice", None)
    body["messages"] = [m for m in map(_invoke_message, params.get("messages") or []) if m["content"]]
    budget = (body.get("thinking") or {}).get("budget_tokens") or 0
    body["max_tokens"] = max(int(params.get("max_tokens") or 1), budget + 1)
    to_native_cache_controls(body, model)  # cache_control.ttl: what the model offers, in a valid order
    return body


def invoke_body_bytes(body: dict[str, Any]) -> bytes:
    """The body as compact UTF-8 JSON (what ``InvokeModelTokensRequest.body`` carries)."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def _invoke_message(message: dict[str, Any]) -> dict[str, Any]:
    """One message as Bedrock takes it (an emptied one is left out by the caller)."""
    if message.get("role") == "system":
        return {"role": "user", "content": _system_reminder(message.get("content"))}
    content = message.get("content")
    if not isinstance(content, list):
        return message
    blocks = []
    for block in content:
        if not isinstance(block, dict) or block.get("type") in SERVER_BLOCK_TYPES:
            continue
        if block.get("type") == "tool_use" and isinstance(block.get("id"), str):
            block = {**block, "id": to_bedrock_id(block["id"])}
        elif block.get("type") == "tool_result" and isinstance(block.get("tool_use_id"), str):
            block = {**block, "tool_use_id": to_bedrock_id(block["tool_use_id"])}
        blocks.append(block)
    return {**message, "content": blocks}
