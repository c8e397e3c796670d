"""Replayed thinking signatures across a provider switch.

Claude Code sends earlier ``thinking`` / ``redacted_thinking`` blocks back with their signatures. After
a fallback to Bedrock (or back to Anthropic when a cooldown ends) some of those were signed by the
other provider, and the provider may answer 400 ("Invalid `signature` in `thinking` block"). The
proxy then retries that one request once with the replayed thinking blocks removed
(:func:`strip_foreign_thinking`) and records the note ``thinking_stripped``: one mechanism,
:func:`with_thinking_retry`, used by both providers.
Source: https://docs.anthropic.com/en/docs/build-with-claude/extended-thinking#preserving-thinking-blocks
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")

THINKING_BLOCK_TYPES = frozenset({"thinking", "redacted_thinking"})
THINKING_STRIPPED = "thinking_stripped"


class SignatureRejected(Exception):
    """Raised by a provider call (see :func:`with_thinking_retry`) whose request replayed thinking
    and was refused for a thinking signature; the provider has released what it opened."""


async def with_thinking_retry(params: dict[str, Any], notes: list[str],
                              call: Callable[[dict[str, Any]], Awaitable[T]]) -> T:
    """``await call(params)``; if it raises SignatureRejected, add ``thinking_stripped`` to
    ``notes`` and return ``await call(strip_foreign_thinking(params))``: once, since the stripped
    params replay no thinking, so :func:`rejects_signature` is false for them. Any other error of
    ``call`` propagates."""
    try:
        return await call(params)
    except SignatureRejected:
        log.info("a replayed thinking signature was rejected; retrying without thinking blocks")
        notes.append(THINKING_STRIPPED)
        return await call(strip_foreign_thinking(params))


def rejects_signature(params: dict[str, Any], message: str) -> bool:
    """Is a 400 with error ``message`` for ``params`` the rejection :func:`with_thinking_retry`
    retries? (``params`` replays thinking, and the message is about a signature.)"""
    return has_replayed_thinking(params) and is_signature_rejection(message)


def has_replayed_thinking(params: dict[str, Any]) -> bool:
    """True when an assistant turn in ``params["messages"]`` carries a thinking block."""
    for message in params.get("messages") or ():
        if not isinstance(message, dict) or message.get("role") != "assistant":
            continue
        content = message.get("content")
        if isinstance(content, list) and any(isinstance(b, dict) and b.get("type") in THINKING_BLOCK_TYPES
                                             for b in content):
            return True
    return False


def is_signature_rejection(message: str) -> bool:
    """Does a 400's error message say a replayed thinking block's signature was rejected?

    Wordings seen (Bedrock passes Anthropic's through as a ValidationException):
    ``messages.1.content.0: Invalid `signature` in `thinking` block``, ``thinking signature has
    expired or is invalid``, ``messages.3.content.0.thinking.signature: Field required``,
    ``... doesn't support the reasoningContent.reasoningText.signature field``, and the gateway
    token ``capability_rejected: thinking_signature`` (app/bedrock/capability.py).
    Sources: github.com/anthropics/claude-code/issues/10627, github.com/can1357/oh-my-pi/pull/10486
    """
    text = message.lower()
    return "signature" in text and any(word in text for word in ("thinking", "reasoning", "redacted"))


def error_message(body: bytes) -> str:
    """``error.message`` from an Anthropic error envelope (``""`` when the body is not one)."""
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return ""
    error = parsed.get("error") if isinstance(parsed, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    return message if isinstance(message, str) else ""


def strip_foreign_thinking(params: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``params`` without ``thinking``/``redacted_thinking`` blocks in assistant turns
    (used when a provider rejects a signature minted by the other one). Emptied turns are removed.

    With thinking on, both APIs require the last assistant turn of a tool loop to start with its
    thinking block, so when that turn holds a ``tool_use`` the request also goes without
    ``thinking`` (and without ``context_management`` edits that need it): one answer without
    thinking instead of a second 400.
    Source: https://docs.anthropic.com/en/docs/build-with-claude/extended-thinking#preserving-thinking-blocks
    """
    messages = []
    for message in params.get("messages") or []:
        content = message.get("content")
        if message.get("role") == "assistant" and isinstance(content, list):
            content = [b for b in content if b.get("type") not in ("thinking", "redacted_thinking")]
            if not content:
                continue
            message = {**message, "content": content}
        messages.append(message)
    stripped = {**params, "messages": messages}
    last_assistant = next((m for m in reversed(messages) if m.get("role") == "assistant"), None)
    in_tool_loop = last_assistant is not None and isinstance(last_assistant.get("content"), list) and any(
        b.get("type") == "tool_use" for b in last_assistant["content"])
    if in_tool_loop and stripped.get("thinking"):
        stripped.pop("thinking")
        management = stripped.get("context_management")
        if isinstance(management, dict):
            edits = [e for e in management.get("edits") or []
                     if not str(e.get("type", "")).startswith("clear_thinking")]
            if edits:
                stripped["context_management"] = {**management, "edits": edits}
            else:
                stripped.pop("context_management")
    return stripped
