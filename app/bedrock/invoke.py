"""Anthropic Messages params -> the native body Bedrock's InvokeModel family takes (pure; no I/O).

Used to serve a request through InvokeModel / InvokeModelWithResponseStream (``api_choice.py``
says when) and for CountTokens' ``invokeModel`` input (``{"body": <JSON bytes>}``), which, unlike
its ``converse`` input (messages and system only: botocore's ``ConverseTokensRequest`` has no
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
- ``cache_control`` without ``scope`` (no Bedrock field; ``ttl`` is kept: the native API takes it);
- ``max_tokens`` above any thinking budget (CountTokens validates the body as a request).

With ``tool_search=True`` (the request uses tool search and the model has it on Bedrock:
:func:`needs_tool_search`, :func:`supports_tool_search`) the body also keeps what only the native
API can carry: the ``tool_search_tool_*`` tools, ``defer_loading`` on custom tools, the
``tool_reference`` blocks in tool results and the tool search's own history blocks
(``server_tool_use`` naming it, ``tool_search_tool_result``), with the ``TOOL_SEARCH_BETA`` Bedrock
gates it behind. Without it, a ``tool_reference`` becomes the text the Converse path sends.
Sources: https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-anthropic-claude-messages-request-response.html,
https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-anthropic-claude-messages-tool-use.html
"""

from __future__ import annotations

import json
from typing import Any

from app.bedrock.cache_ttl import to_native_cache_controls
from app.bedrock.models import BedrockModel, normalize
from app.bedrock.request import _system_reminder, to_additional_fields
from app.bedrock.shapes import SERVER_BLOCK_TYPES
from app.bedrock.tool_ids import to_bedrock_id

ANTHROPIC_VERSION = "bedrock-2023-05-31"
# Top-level Messages fields the native Bedrock body carries (everything else is left out).
INVOKE_FIELDS = frozenset({
    "messages", "system", "max_tokens", "temperature", "top_p", "top_k", "stop_sequences", "tools",
    "tool_choice", "thinking", "output_config",
})
# Tool fields never sent: each needs a beta Bedrock does not take (input_examples, eager_input_streaming,
# allowed_callers: programmatic tool calling runs in Anthropic's code-execution container).
DROPPED_TOOL_FIELDS = frozenset({"eager_input_streaming", "allowed_callers", "input_examples"})
# Tool search on Bedrock: InvokeModel only, behind this beta (the tool types are Anthropic's).
TOOL_SEARCH_BETA = "tool-search-tool-2025-10-19"
TOOL_SEARCH_TYPE_PREFIX = "tool_search_tool_"  # tool_search_tool_regex_20251119, tool_search_tool_bm25_20251119
TOOL_SEARCH_BLOCK_TYPES = frozenset({"tool_search_tool_result", "tool_reference"})
# Models Bedrock serves without tool search (it came with Claude Opus 4.5 / Sonnet 4.5); every newer
# model, known or not, is assumed to have it. Capability by base id (models.normalize), not substring.
NO_TOOL_SEARCH = frozenset({
    "claude-haiku-4-5", "claude-opus-4-1", "claude-opus-4", "claude-sonnet-4", "claude-3-7-sonnet",
    "claude-3-5-haiku", "claude-3-5-sonnet",
})


def needs_tool_search(params: dict[str, Any]) -> bool:
    """True when ``params`` offers a tool search tool or a tool with ``defer_loading: true``: a request
    Converse cannot carry (it would send every deferred tool as an ordinary one)."""
    return any(isinstance(t, dict) and (t.get("defer_loading") is True or _is_tool_search(t))
               for t in params.get("tools") or [])


def supports_tool_search(model: BedrockModel) -> bool:
    """Whether Bedrock serves tool search for ``model`` (``NO_TOOL_SEARCH``)."""
    return normalize(model.anthropic_model)[0] not in NO_TOOL_SEARCH


def to_invoke_body(params: dict[str, Any], model: BedrockModel, *, betas: list[str],
                   tool_search: bool = False) -> dict[str, Any]:
    """Messages ``params`` -> the InvokeModel body (a dict; :func:`invoke_body_bytes` encodes it).
    ``tool_search``: keep tool search (module doc). Does not mutate ``params``."""
    body: dict[str, Any] = {"anthropic_version": ANTHROPIC_VERSION}
    body.update({k: v for k, v in params.items() if k in INVOKE_FIELDS})
    if isinstance(body.get("system"), list):
        body["system"] = [_without_scope(b) if isinstance(b, dict) else b for b in body["system"]]
    additional = to_additional_fields(params, model, betas)
    body.pop("thinking", None)
    if "thinking" in additional:
        body["thinking"] = additional["thinking"]
    anthropic_beta = list(additional.get("anthropic_beta") or [])
    if tool_search and TOOL_SEARCH_BETA not in anthropic_beta:
        anthropic_beta.append(TOOL_SEARCH_BETA)
    if anthropic_beta:
        body["anthropic_beta"] = anthropic_beta
    output_config = additional.get("output_config")
    body.pop("output_config", None)
    if output_config:
        body["output_config"] = output_config
    dropped = DROPPED_TOOL_FIELDS if tool_search else DROPPED_TOOL_FIELDS | {"defer_loading"}
    tools = [t for t in body.pop("tools", None) or []
             if isinstance(t, dict) and (t.get("type") in (None, "custom") or (tool_search and _is_tool_search(t)))]
    if tools:
        body["tools"] = [_without_scope({k: v for k, v in t.items() if k not in dropped}) for t in tools]
    else:
        body.pop("tool_choice", None)
    messages = (_invoke_message(m, tool_search) for m in params.get("messages") or [])
    body["messages"] = [m for m in messages if m["content"]]
    budget = (body.get("thinking") or {}).get("budget_tokens") or 0
    body["max_tokens"] = max(int(params.get("max_tokens") or 1), budget + 1)
    to_native_cache_controls(body, model)  # cache_control.ttl: what the model offers, in a valid order
    return body


def invoke_body_bytes(body: dict[str, Any]) -> bytes:
    """The body as compact UTF-8 JSON (what ``InvokeModelRequest.body`` and
    ``InvokeModelTokensRequest.body`` carry)."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def _is_tool_search(tool: dict[str, Any]) -> bool:
    kind = tool.get("type")
    return isinstance(kind, str) and kind.startswith(TOOL_SEARCH_TYPE_PREFIX)


def _without_scope(block: dict[str, Any]) -> dict[str, Any]:
    """``block`` with ``cache_control.scope`` removed (a new dict when there was one)."""
    cache_control = block.get("cache_control")
    if isinstance(cache_control, dict) and "scope" in cache_control:
        return {**block, "cache_control": {k: v for k, v in cache_control.items() if k != "scope"}}
    return block


def _kept(block: dict[str, Any], tool_search: bool) -> bool:
    """Whether a history block goes to Bedrock: server tool blocks do not, except, with tool search,
    the tool search's own (its ``server_tool_use`` and ``tool_search_tool_result``)."""
    kind = block.get("type")
    if kind not in SERVER_BLOCK_TYPES:
        return True
    if not tool_search:
        return False
    name = block.get("name")
    return kind in TOOL_SEARCH_BLOCK_TYPES or (kind == "server_tool_use" and isinstance(name, str)
                                               and name.startswith("tool_search"))


def _invoke_message(message: dict[str, Any], tool_search: bool = False) -> dict[str, Any]:
    """One message as Bedrock takes it (an emptied one is left out by the caller)."""
    if message.get("role") == "system":
        return {"role": "user", "content": _system_reminder(message.get("content"))}
    content = message.get("content")
    if not isinstance(content, list):
        return message
    blocks = []
    for block in content:
        if not isinstance(block, dict) or not _kept(block, tool_search):
            continue
        block = _without_scope(block)
        if block.get("type") == "tool_use" and isinstance(block.get("id"), str):
            block = {**block, "id": to_bedrock_id(block["id"])}
        elif block.get("type") == "tool_result":
            block = _tool_result(block, tool_search)
        blocks.append(block)
    return {**message, "content": blocks}


def _tool_result(block: dict[str, Any], tool_search: bool) -> dict[str, Any]:
    if isinstance(block.get("tool_use_id"), str):
        block = {**block, "tool_use_id": to_bedrock_id(block["tool_use_id"])}
    content = block.get("content")
    if isinstance(content, list):
        items = []
        for item in content:
            if isinstance(item, dict) and item.get("type") == "tool_reference" and not tool_search:
                item = {"type": "text", "text": f"Tool {item.get('tool_name', '')} is available."}
            items.append(_without_scope(item) if isinstance(item, dict) else item)
        block = {**block, "content": items}
    return block
