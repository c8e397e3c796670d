"""Anthropic Messages params -> Bedrock Converse / ConverseStream request kwargs (pure; no I/O).

Every top-level field is mapped (shapes.MAPPED_FIELDS), dropped on purpose (shapes.DROPPED_FIELDS,
with the reason), or - when unknown - dropped too, so a client that adds a field never breaks the
fallback (``dropped_fields(params)`` lists them for logging). Content that cannot be translated
(image/document URLs, Files API ids) raises ``InvalidRequest``.
Sources: https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html,
https://docs.anthropic.com/en/api/messages, docs/translation.md.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from app.bedrock.cache_ttl import cache_point, order_cache_point_ttls, to_cache_ttl
from app.bedrock.models import BedrockModel
from app.bedrock.tool_ids import to_bedrock_id
from app.bedrock.shapes import (
    BETA_CONTEXT_1M, BETA_INTERLEAVED, DROPPED_FIELDS, IMAGE_FORMATS, MAPPED_FIELDS, MAX_CACHE_POINTS,
    PLACEHOLDER_TOOL, SERVER_BLOCK_TYPES, STOP_SEQUENCE_PATH, SUPPORTED_BETAS,
)
from app.errors import InvalidRequest

_METADATA_VALUE = re.compile(r"[a-zA-Z0-9\s:_@$#=/+,.-]{0,256}")  # RequestMetadataValueString
_DOC_NAME_BAD = re.compile(r"[^A-Za-z0-9\s\-()\[\]]")  # Bedrock: alnum, space, hyphen, () and []
Block = dict[str, Any]


def to_converse_request(params: dict[str, Any], model: BedrockModel, *, betas: list[str]) -> dict[str, Any]:
    """Messages ``params`` -> kwargs for botocore ``converse``/``converse_stream``. Does not mutate ``params``.

    Out: ``{modelId, messages, system?, inferenceConfig, toolConfig?, additionalModelRequestFields?,
    additionalModelResponseFieldPaths?, requestMetadata?}``; binary sources are raw ``bytes``.
    Units: max_tokens -> inferenceConfig.maxTokens (tokens). Raises: InvalidRequest.
    """
    if not isinstance(params.get("messages"), list):
        raise InvalidRequest("messages: field required (a list of messages)")
    docs = _DocNames()
    system = to_system_blocks(params.get("system"), model)
    messages = to_converse_messages(params["messages"], model, docs)
    request: dict[str, Any] = {"modelId": model.model_id, "messages": messages}
    if system:
        request["system"] = system
    request["inferenceConfig"] = to_inference_config(params)
    if tool_config := to_tool_config(params, messages, model):
        request["toolConfig"] = tool_config
    if fields := to_additional_fields(params, model, betas):
        request["additionalModelRequestFields"] = fields
    if request["inferenceConfig"].get("stopSequences"):
        request["additionalModelResponseFieldPaths"] = [STOP_SEQUENCE_PATH]
    if metadata := to_request_metadata(params.get("metadata")):
        request["requestMetadata"] = metadata
    cap_cache_points(request)
    order_cache_point_ttls([b["cachePoint"] for blocks in _cache_point_lists(request) for b in blocks
                            if "cachePoint" in b])
    return request


def dropped_fields(params: dict[str, Any]) -> list[str]:
    """Top-level fields of ``params`` that do not reach Bedrock (known drops and unknown fields)."""
    return sorted(k for k in params if k not in MAPPED_FIELDS or k in DROPPED_FIELDS)


def to_system_blocks(system: Any, model: BedrockModel) -> list[Block]:
    """``"text"`` or ``[{type: text, text, cache_control?}]`` -> ``[{text}, {cachePoint}?, ...]``."""
    if not system:
        return []
    if isinstance(system, str):
        return [{"text": system}] if system.strip() else []
    blocks: list[Block] = []
    for block in system:
        if block.get("type") != "text":
            raise InvalidRequest(f"system: block type {block.get('type')!r} is not supported (text only)")
        if block.get("text", "").strip():
            blocks.append({"text": block["text"]})
            _cache_point(blocks, block, model)
        elif block.get("cache_control") and model.supports_cache_points:
            # blank text is not sent; its breakpoint still counts
            _append_cache_point(blocks, to_cache_ttl(block["cache_control"], model))
    return blocks


def to_converse_messages(messages: list[dict[str, Any]], model: BedrockModel, docs: _DocNames | None = None
                         ) -> list[Block]:
    """Anthropic ``messages`` -> Converse ``messages``: consecutive same-role turns merged, empty
    turns dropped, and a ``role: system`` turn folded into a user turn as ``<system-reminder>`` text
    (its ``cache_control`` breakpoints kept: Claude Code puts its conversation-tail breakpoint there).

    Every breakpoint survives: a ``cache_control`` on a block that is not sent (blank text, a server
    tool's block) becomes a cachePoint where the block was, i.e. after the last block that is sent.
    """
    docs = docs or _DocNames()
    out: list[Block] = []
    for message in messages:
        role, content = message.get("role"), message.get("content")
        if role == "system":
            role, content = "user", _system_reminder(content)
        if role not in ("user", "assistant"):
            raise InvalidRequest(f"messages: role {role!r} is not supported")
        if isinstance(content, str):
            content = [{"type": "text", "text": content}]
        blocks: list[Block] = []
        for block in content or []:
            converted = to_content_blocks(block, model, docs)
            if not converted and block.get("cache_control") and model.supports_cache_points:
                _append_cache_point(blocks or (out[-1]["content"] if out else []),
                                    to_cache_ttl(block["cache_control"], model))
            blocks.extend(converted)
        if not any("cachePoint" not in b for b in blocks):
            if out and blocks:  # only breakpoints left: they end the previous turn's prefix
                _append_cache_point(out[-1]["content"], _longest_ttl(blocks))
            continue
        if out and out[-1]["role"] == role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})
    return out


def to_content_blocks(block: dict[str, Any], model: BedrockModel, docs: _DocNames) -> list[Block]:
    """One Anthropic content block -> 0..2 Converse blocks (the block, then a cachePoint if asked)."""
    kind = block.get("type")
    if kind == "text":
        converted = {"text": block["text"]} if block.get("text", "").strip() else None
    elif kind == "image":
        converted = {"image": to_image(block)}
    elif kind == "document":
        converted = {"document": to_document(block, docs)}
    elif kind == "tool_use":
        converted = {"toolUse": {"toolUseId": to_bedrock_id(str(block["id"])), "name": block["name"],
                                 "input": block.get("input") or {}}}
    elif kind == "tool_result":
        converted = {"toolResult": to_tool_result(block, model, docs)}
    elif kind == "thinking":
        text = {"text": block.get("thinking", "")}
        if block.get("signature"):
            text["signature"] = block["signature"]  # passed through byte-identical
        converted = {"reasoningContent": {"reasoningText": text}}
    elif kind == "redacted_thinking":
        converted = {"reasoningContent": {"redactedContent": _b64decode(block.get("data", ""), "redacted_thinking.data")}}
    elif kind == "search_result":
        converted = {"text": _search_result_text(block)}
    elif kind in SERVER_BLOCK_TYPES:
        converted = None
    else:
        raise InvalidRequest(f"messages: content block type {kind!r} cannot be sent to Amazon Bedrock")
    if converted is None:
        return []
    out = [converted]
    _cache_point(out, block, model)
    return out


def to_image(block: dict[str, Any]) -> Block:
    """``{source: {type: base64, media_type, data}}`` -> ``{format, source: {bytes}}``."""
    source = block.get("source") or {}
    if source.get("type") != "base64":
        raise InvalidRequest(f"image source type {source.get('type')!r} is not supported by the Bedrock "
                             "fallback; send the image as base64")
    image_format = IMAGE_FORMATS.get(str(source.get("media_type", "")).lower())
    if image_format is None:
        raise InvalidRequest(f"image media_type {source.get('media_type')!r} is not supported "
                             "(png, jpeg, gif, webp)")
    return {"format": image_format, "source": {"bytes": _b64decode(source.get("data", ""), "image.source.data")}}


def to_document(block: dict[str, Any], docs: _DocNames) -> Block:
    """PDF (base64) or plain text (``text`` / ``content`` source) -> ``{format, name, source: {bytes}}``.

    ``name`` comes from ``title``, reduced to what Bedrock allows and made unique in the request.
    """
    source = block.get("source") or {}
    kind = source.get("type")
    if kind == "base64" and source.get("media_type") == "application/pdf":
        document: Block = {"format": "pdf", "source": {"bytes": _b64decode(source.get("data", ""), "document.source.data")}}
    elif kind == "base64" and source.get("media_type") == "text/plain":
        document = {"format": "txt", "source": {"bytes": _b64decode(source.get("data", ""), "document.source.data")}}
    elif kind == "text":
        document = {"format": "txt", "source": {"bytes": (source.get("data") or " ").encode()}}
    elif kind == "content":
        parts = source.get("content")
        text = parts if isinstance(parts, str) else "\n\n".join(p.get("text", "") for p in parts or [])
        document = {"format": "txt", "source": {"bytes": (text or " ").encode()}}
    else:
        raise InvalidRequest(f"document source {kind!r} ({source.get('media_type')}) is not supported by the "
                             "Bedrock fallback; send PDF as base64 or plain text")
    document["name"] = docs.name(block.get("title"))
    if block.get("context"):
        document["context"] = block["context"]
    return document


def to_tool_result(block: dict[str, Any], model: BedrockModel, docs: _DocNames) -> Block:
    """``tool_result`` -> ``{toolUseId, content: [{text}|{image}|{document}], status?}``."""
    content = block.get("content")
    items = [{"type": "text", "text": content}] if isinstance(content, str) else content or []
    converted: list[Block] = []
    for item in items:
        if item.get("type") == "text":
            if item.get("text", "").strip():
                converted.append({"text": item["text"]})
        elif item.get("type") == "image":
            converted.append({"image": to_image(item)})
        elif item.get("type") == "document":
            converted.append({"document": to_document(item, docs)})
        elif item.get("type") == "search_result":
            converted.append({"text": _search_result_text(item)})
        elif item.get("type") == "tool_reference":
            converted.append({"text": f"Tool {item.get('tool_name', '')} is available."})
        else:
            raise InvalidRequest(f"tool_result content type {item.get('type')!r} cannot be sent to Amazon Bedrock")
    result: Block = {"toolUseId": to_bedrock_id(str(block["tool_use_id"])), "content": converted or [{"text": "(no content)"}]}
    if block.get("is_error"):
        result["status"] = "error"
    return result


def to_inference_config(params: dict[str, Any]) -> dict[str, Any]:
    """max_tokens/temperature/top_p/stop_sequences -> ``{maxTokens, temperature, topP, stopSequences}``."""
    if not isinstance(params.get("max_tokens"), int) or params["max_tokens"] < 1:
        raise InvalidRequest("max_tokens: field required (a positive integer)")
    config: dict[str, Any] = {"maxTokens": params["max_tokens"]}
    for source, target in (("temperature", "temperature"), ("top_p", "topP")):
        if params.get(source) is not None:
            config[target] = params[source]
    if stops := [s for s in params.get("stop_sequences") or [] if s]:
        config["stopSequences"] = stops
    return config


def to_tool_config(params: dict[str, Any], messages: list[Block], model: BedrockModel) -> dict[str, Any] | None:
    """tools + tool_choice -> ``toolConfig``; ``None`` when no tool is offered and history has none.

    Only custom tools are sent (server tools run on Anthropic's side). ``tool_choice: none`` withholds
    the tools. Converse needs a toolConfig whenever history holds toolUse/toolResult, so then a
    placeholder tool is offered (shapes.PLACEHOLDER_TOOL).
    """
    choice = params.get("tool_choice") or {}
    tools: list[Block] = []
    if choice.get("type") != "none":
        for tool in params.get("tools") or []:
            if tool.get("type") not in (None, "custom"):
                # server / Anthropic-defined tool (web_search_*, bash_*, ...): see shapes.py; its
                # breakpoint stays, after the last tool that is sent
                if tool.get("cache_control") and model.supports_cache_points:
                    _append_cache_point(tools, to_cache_ttl(tool["cache_control"], model))
                continue
            spec: Block = {"name": tool["name"], "inputSchema": {"json": tool.get("input_schema") or {"type": "object"}}}
            if tool.get("description"):
                spec["description"] = tool["description"]
            tools.append({"toolSpec": spec})
            _cache_point(tools, tool, model)
    if not any("toolSpec" in t for t in tools):
        has_history = any("toolUse" in b or "toolResult" in b for m in messages for b in m["content"])
        return {"tools": [PLACEHOLDER_TOOL]} if has_history else None
    config: dict[str, Any] = {"tools": tools}
    if choice.get("type") in ("auto", "any"):
        config["toolChoice"] = {choice["type"]: {}}
    elif choice.get("type") == "tool":
        config["toolChoice"] = {"tool": {"name": choice["name"]}}
    return config


def to_additional_fields(params: dict[str, Any], model: BedrockModel, betas: list[str]) -> dict[str, Any]:
    """top_k, thinking, output_config.effort and allowed betas -> ``additionalModelRequestFields``."""
    fields: dict[str, Any] = {}
    if params.get("top_k") is not None:
        fields["top_k"] = params["top_k"]
    if thinking := to_thinking(params.get("thinking"), model, params.get("max_tokens") or 0):
        fields["thinking"] = thinking
    effort = (params.get("output_config") or {}).get("effort")
    if effort and model.supports_effort:
        fields["output_config"] = {"effort": effort}
    wanted = [*betas, *([BETA_CONTEXT_1M] if model.context_1m else [])]
    allowed = []
    for beta in wanted:
        beta = beta.strip()
        if (beta not in SUPPORTED_BETAS or beta in allowed or (beta == BETA_CONTEXT_1M and not model.supports_context_1m)
                or (beta == BETA_INTERLEAVED and not model.supports_interleaved_thinking)):
            continue
        allowed.append(beta)
    if allowed:
        fields["anthropic_beta"] = allowed
    return fields


def to_thinking(thinking: Any, model: BedrockModel, max_tokens: int) -> dict[str, Any] | None:
    """``{type: enabled, budget_tokens}`` passes through, except on adaptive-only models (Opus 4.7+,
    which answer it with 400) where it becomes ``{type: adaptive}`` (the budget is dropped; the
    client's ``output_config.effort`` still steers depth). ``{type: adaptive}`` passes through where
    the model supports it, else becomes ``enabled`` with ``budget_tokens = max_tokens - 1`` (needs
    >= 1024). ``display`` is not sent (see shapes.DROPPED_BLOCK_FIELDS); ``thinking_omitted`` applies it
    to the answer. Source: https://docs.aws.amazon.com/bedrock/latest/userguide/claude-messages-adaptive-thinking.html
    """
    kind = (thinking or {}).get("type")
    if not model.supports_thinking or kind not in ("enabled", "adaptive"):
        return None
    if kind == "enabled" and model.adaptive_thinking_only:
        return {"type": "adaptive"}
    if kind == "enabled":
        return {k: v for k, v in thinking.items() if k in ("type", "budget_tokens")}
    if model.supports_adaptive_thinking:
        return {"type": "adaptive"}
    return {"type": "enabled", "budget_tokens": max_tokens - 1} if max_tokens > 1024 else None


def thinking_omitted(params: dict[str, Any]) -> bool:
    """True when the client asked for ``thinking.display: "omitted"``: the answer then carries thinking
    blocks with their signature and empty ``thinking`` text, as Anthropic returns them
    (response.to_message / stream.StreamTranslator ``omit_thinking``)."""
    thinking = params.get("thinking")
    return isinstance(thinking, dict) and thinking.get("display") == "omitted"


def to_request_metadata(metadata: Any) -> dict[str, str] | None:
    """``{user_id}`` -> ``{"user_id": ...}`` when it fits RequestMetadataValueString, else dropped."""
    user_id = (metadata or {}).get("user_id")
    if isinstance(user_id, str) and user_id and _METADATA_VALUE.fullmatch(user_id):
        return {"user_id": user_id}
    return None


def cap_cache_points(request: dict[str, Any]) -> None:
    """Keep only the last MAX_CACHE_POINTS cachePoints in prompt order (tools, system, messages):
    a later checkpoint caches a longer prefix. Mutates ``request`` (the caller's own new dict)."""
    lists = _cache_point_lists(request)
    excess = sum(1 for blocks in lists for b in blocks if "cachePoint" in b) - MAX_CACHE_POINTS
    for blocks in lists:
        while excess > 0 and any("cachePoint" in b for b in blocks):
            blocks.remove(next(b for b in blocks if "cachePoint" in b))
            excess -= 1


class _DocNames:
    """Bedrock document names: letters, digits, single spaces, hyphens, () and []; unique per request."""

    def __init__(self) -> None:
        self._seen: set[str] = set()

    def name(self, title: Any) -> str:
        base = " ".join(_DOC_NAME_BAD.sub(" ", str(title or "")).split())[:190] or "document"
        name, n = base, 1
        while name in self._seen:
            n += 1
            name = f"{base} ({n})"
        self._seen.add(name)
        return name


def _cache_point_lists(request: dict[str, Any]) -> list[list[Block]]:
    """The block lists that can hold cachePoints, in prompt order: tools, system, each message."""
    return [request.get("toolConfig", {}).get("tools", []), request.get("system", []),
            *(m["content"] for m in request["messages"])]


def _cache_point(blocks: list[Block], source: dict[str, Any], model: BedrockModel) -> None:
    # ttl: cache_ttl.to_cache_ttl; scope is dropped (shapes.DROPPED_BLOCK_FIELDS).
    if source.get("cache_control") and model.supports_cache_points:
        blocks.append(cache_point(to_cache_ttl(source["cache_control"], model)))


def _append_cache_point(blocks: list[Block], ttl: str | None = None) -> None:
    """A breakpoint after the last block of ``blocks``; none at the very start (nothing to cache)
    and none right after another one (the same prefix: that one takes the longer TTL)."""
    if not blocks:
        return
    if "cachePoint" not in blocks[-1]:
        blocks.append(cache_point(ttl))
    elif ttl:
        blocks[-1]["cachePoint"]["ttl"] = ttl


def _longest_ttl(blocks: list[Block]) -> str | None:
    """The longest ``ttl`` among ``blocks``' cachePoints (None: the default 5 minutes)."""
    return next((b["cachePoint"]["ttl"] for b in blocks if b.get("cachePoint", {}).get("ttl")), None)


def _system_reminder(content: Any) -> list[Block]:
    """A ``role: system`` message's content -> Anthropic text blocks whose texts join to
    ``<system-reminder>\n{texts joined by blank lines}\n</system-reminder>``: one block, or one per
    ``cache_control`` breakpoint (each ending where the client's breakpoint was, carrying it)."""
    if isinstance(content, str):
        parts: list[tuple[str, Any]] = [(content, None)]
    else:
        parts = [(b.get("text", ""), b.get("cache_control")) for b in content or [] if b.get("type") == "text"]
    if not "".join(text for text, _ in parts).strip():
        return []
    segments: list[list[Any]] = [["", None]]
    for i, (text, cache_control) in enumerate(parts):
        segments[-1][0] += ("\n\n" if i else "") + text
        if cache_control:
            segments[-1][1] = cache_control
            segments.append(["", None])
    if len(segments) > 1 and not segments[-1][0]:
        segments.pop()
    segments[0][0] = "<system-reminder>\n" + segments[0][0]
    segments[-1][0] += "\n</system-reminder>"
    return [{"type": "text", "text": text, **({"cache_control": cc} if cc else {})} for text, cc in segments]


def _search_result_text(block: dict[str, Any]) -> str:
    texts = "\n".join(c.get("text", "") for c in block.get("content") or [])
    return f"{block.get('title', '')} ({block.get('source', '')})\n{texts}".strip() or "(empty search result)"


def _b64decode(data: str, field: str) -> bytes:
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise InvalidRequest(f"{field}: not valid base64") from exc
    if not raw:
        raise InvalidRequest(f"{field}: empty")
    return raw

