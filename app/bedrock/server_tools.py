"""Requests that force a tool Bedrock cannot run: answered without calling Bedrock (pure; no I/O).

Converse carries only custom JSON-schema tools, so server tools (``web_search_*``, ``web_fetch_*``,
``code_execution_*``, ...) and Anthropic-defined client tools (``bash_*``, ``text_editor_*`` ...) are
not sent (shapes.py). When ``tool_choice`` *forces* such a tool, sending the rest would let the model
answer in plain text that the client takes as the tool's output (Claude Code's WebSearch sends only
``web_search_20250305`` with ``tool_choice: {type: tool, name: web_search}``: it would read an
answer with zero searches behind it as search results). So ``answer_without_bedrock`` decides:

- a forced web search -> the answer Anthropic gives when search is unavailable: a ``server_tool_use``
  block, then a ``web_search_tool_result`` whose content is ``{type: web_search_tool_result_error,
  error_code: unavailable}``, then a short text saying why; ``stop_reason: end_turn``, 0 tokens.
  Claude Code reports "Web search error: unavailable" to the model and the session goes on.
- any other forced tool Bedrock cannot run -> ``InvalidRequest`` (400) naming the tool.
- anything else -> ``None``: translate and send to Bedrock as usual.

``render_answer`` turns the answer into a JSON body or the SSE event sequence Anthropic streams for
it (``to_stream_events``, framed by stream.encode_sse).
Sources: https://platform.claude.com/docs/en/agents-and-tools/tool-use/web-search-tool (errors),
anthropic SDK 2.12.0 types ``ServerToolUseBlock``, ``WebSearchToolResultBlock``,
``WebSearchToolResultErrorObject`` (error codes ``invalid_tool_input``, ``unavailable``,
``max_uses_exceeded``, ``too_many_requests``, ``query_too_long``, ``request_too_large``).
"""

from __future__ import annotations

import json
import secrets
import string
from typing import Any

from app.bedrock.response import new_message_id
from app.bedrock.stream import encode_sse
from app.errors import InvalidRequest

Message = dict[str, Any]
NOTE = "server_tool_unavailable"  # stored on the usage event of a request answered this way
UNAVAILABLE_TEXT = ("Web search is unavailable for this request: it was served by the Amazon Bedrock fallback, "
                    "which cannot run Anthropic's web search tool. No search was performed.")
MAX_QUERY_CHARS = 500
_ALPHABET = string.ascii_letters + string.digits


def forced_unrunnable_tool(params: dict[str, Any]) -> dict[str, Any] | None:
    """The tool definition ``tool_choice`` forces that Converse cannot carry, else None.

    ``{type: tool, name}`` naming a non-custom tool forces it; ``{type: any}`` when every tool offered
    is non-custom forces one of them (a web search, if offered)."""
    choice = params.get("tool_choice")
    choice = choice if isinstance(choice, dict) else {}
    tools = [t for t in params.get("tools") or [] if isinstance(t, dict)]
    unrunnable = [t for t in tools if t.get("type") not in (None, "custom")]
    if choice.get("type") == "tool":
        return next((t for t in unrunnable if t.get("name") == choice.get("name")), None)
    if choice.get("type") == "any" and unrunnable and len(unrunnable) == len(tools):
        return next((t for t in unrunnable if _is_web_search(t)), unrunnable[0])
    return None


def answer_without_bedrock(params: dict[str, Any], *, model: str, message_id: str | None = None) -> Message | None:
    """``None``: call Bedrock. A Message dict: the answer to return instead (see the module doc).

    ``model`` is the id the client sent (echoed in the Message). Raises InvalidRequest naming a
    forced tool that Bedrock cannot run and that has no "unavailable" answer."""
    tool = forced_unrunnable_tool(params)
    if tool is None:
        return None
    if not _is_web_search(tool):
        raise InvalidRequest(f"tool_choice forces the tool {tool.get('name')!r} (type {tool.get('type')!r}), "
                             "which Amazon Bedrock cannot run; this request cannot be served by the Bedrock "
                             "fallback (offer it without forcing it, or retry when Anthropic is available)")
    return web_search_unavailable(params, tool_name=str(tool.get("name") or "web_search"), model=model,
                                  message_id=message_id)


def web_search_unavailable(params: dict[str, Any], *, tool_name: str, model: str,
                           message_id: str | None = None, tool_use_id: str | None = None) -> Message:
    """The Message Anthropic returns when web search is unavailable. The search ``query`` shown is
    the last user text (what the forced search was asked to look up), at most MAX_QUERY_CHARS."""
    tool_use_id = tool_use_id or "srvtoolu_bdrk_" + "".join(secrets.choice(_ALPHABET) for _ in range(24))
    return {
        "id": message_id or new_message_id(),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [
            {"type": "server_tool_use", "id": tool_use_id, "name": tool_name,
             "input": {"query": _last_user_text(params)[:MAX_QUERY_CHARS]}},
            {"type": "web_search_tool_result", "tool_use_id": tool_use_id,
             "content": {"type": "web_search_tool_result_error", "error_code": "unavailable"}},
            {"type": "text", "text": UNAVAILABLE_TEXT},
        ],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 0, "output_tokens": 0, "cache_creation_input_tokens": 0,
                  "cache_read_input_tokens": 0,
                  "server_tool_use": {"web_search_requests": 0, "web_fetch_requests": 0}},
    }


def to_stream_events(message: Message) -> list[dict[str, Any]]:
    """A complete Message -> the Anthropic stream events that build it (works for any Message):
    ``message_start`` (empty content), per block ``content_block_start`` / ``_delta`` / ``_stop``
    (text -> text_delta; tool_use and server_tool_use -> input_json_delta of the whole input;
    thinking -> thinking_delta (if any text) + signature_delta; other blocks arrive whole in their
    start event), then ``message_delta`` and ``message_stop``."""
    start = {**message, "content": [], "stop_reason": None, "stop_sequence": None,
             "usage": {**message["usage"], "output_tokens": 0}}
    events: list[dict[str, Any]] = [{"type": "message_start", "message": start}]
    for index, block in enumerate(message["content"]):
        kind = block["type"]
        deltas: list[dict[str, Any]] = []
        opening: dict[str, Any]
        if kind == "text":
            opening = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": block["text"]}] if block["text"] else []
        elif kind in ("tool_use", "server_tool_use"):
            opening = {**block, "input": {}}
            if block.get("input"):
                deltas = [{"type": "input_json_delta", "partial_json": json.dumps(block["input"], ensure_ascii=False)}]
        elif kind == "thinking":
            opening = {"type": "thinking", "thinking": "", "signature": ""}
            deltas = [{"type": "thinking_delta", "thinking": block["thinking"]}] if block.get("thinking") else []
            deltas.append({"type": "signature_delta", "signature": block.get("signature", "")})
        else:
            opening = block
        events.append({"type": "content_block_start", "index": index, "content_block": opening})
        events += [{"type": "content_block_delta", "index": index, "delta": delta} for delta in deltas]
        events.append({"type": "content_block_stop", "index": index})
    usage = message["usage"]
    events.append({"type": "message_delta",
                   "delta": {"stop_reason": message["stop_reason"], "stop_sequence": message["stop_sequence"]},
                   "usage": {k: usage[k] for k in ("input_tokens", "output_tokens", "cache_creation_input_tokens",
                                                   "cache_read_input_tokens", "server_tool_use") if k in usage}})
    events.append({"type": "message_stop"})
    return events


def render_answer(message: Message, *, stream: bool) -> tuple[bytes, list[tuple[str, str]]]:
    """``(body, headers)``: the Message as compact JSON, or (``stream``) its SSE event sequence."""
    if stream:
        body = b"".join(encode_sse(event) for event in to_stream_events(message))
        return body, [("content-type", "text/event-stream; charset=utf-8"), ("cache-control", "no-cache")]
    return (json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode(),
            [("content-type", "application/json")])


def _is_web_search(tool: dict[str, Any]) -> bool:
    return str(tool.get("type") or "").startswith("web_search_")


def _last_user_text(params: dict[str, Any]) -> str:
    for message in reversed(params.get("messages") or []):
        if not isinstance(message, dict) or message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            texts = [content]
        else:
            texts = [b.get("text", "") for b in content or [] if isinstance(b, dict) and b.get("type") == "text"]
        text = " ".join(" ".join(texts).split())
        if text:
            return text
    return ""
