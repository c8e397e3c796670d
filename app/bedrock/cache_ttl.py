"""Prompt-cache TTLs on Bedrock (pure; no I/O): ``cache_control.ttl`` -> ``cachePoint.ttl``, and the
rule that TTLs do not increase along the prompt.

Anthropic: ``cache_control: {"type": "ephemeral", "ttl": "5m" | "1h"}`` (default 5m).
Bedrock Converse: ``cachePoint: {"type": "default", "ttl"?: "5m" | "1h"}`` (``CacheTTL`` in the service
model; omitted = 5 minutes). 1h is offered on Claude 4.5 and later only (``BedrockModel.supports_cache_ttl_1h``);
elsewhere a 1h ask becomes the default 5 minutes rather than a request Bedrock refuses.

Ordering: both services read breakpoints in prompt order (tools, then system, then messages) and
refuse a longer TTL after a shorter one ("1h entries must appear before 5m entries"). A client whose
breakpoints break that rule (or whose 1h breakpoint the proxy had to move) would get a 400 from the
fallback, so the proxy *raises* an earlier, shorter TTL to the longest TTL after it: every 1h the
client asked for is kept (a later breakpoint's prefix contains the earlier one's), at the cost of
writing the earlier prefix at the 1h rate. Lowering the later ones instead would silently drop the
longer caching the client asked for.

Sources: https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_CachePointBlock.html,
https://docs.aws.amazon.com/bedrock/latest/userguide/prompt-caching.html,
https://docs.anthropic.com/en/docs/build-with-claude/prompt-caching#mixing-different-ttls
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from app.bedrock.models import BedrockModel

TTL_1H = "1h"  # the one non-default value; "5m" is Bedrock's default and is not sent


def to_cache_ttl(cache_control: Any, model: BedrockModel) -> str | None:
    """``cache_control`` -> the ``cachePoint.ttl`` to send: ``"1h"`` when asked for and the model has
    it, else None (no field: the 5-minute default). ``"5m"``, a missing ttl and unknown values -> None."""
    if isinstance(cache_control, dict) and cache_control.get("ttl") == TTL_1H and model.supports_cache_ttl_1h:
        return TTL_1H
    return None


def cache_point(ttl: str | None = None) -> dict[str, Any]:
    """A new Converse ``{"cachePoint": {"type": "default", "ttl"?}}`` block."""
    point: dict[str, Any] = {"type": "default"}
    if ttl:
        point["ttl"] = ttl
    return {"cachePoint": point}


def order_cache_point_ttls(points: list[dict[str, Any]]) -> None:
    """Raise each ``cachePoint`` body (in prompt order) to the longest TTL after it, so TTLs never
    increase along the prompt. Mutates ``points``' dicts (the caller's own new request)."""
    longest: str | None = None
    for point in reversed(points):
        if point.get("ttl") == TTL_1H:
            longest = TTL_1H
        elif longest:
            point["ttl"] = longest


def to_native_cache_controls(body: dict[str, Any], model: BedrockModel) -> None:
    """The same rules on a native (InvokeModel) body, whose ``cache_control`` objects pass through in
    Anthropic's format: a 1h the model lacks is removed, and earlier breakpoints are raised to 1h when
    a later one has it. ``body``'s blocks may be the client's own dicts, so every changed block is
    replaced by a copy (``params`` is never mutated). Mutates ``body``'s lists."""
    slots = list(_native_slots(body))
    longest: str | None = None
    for container, key in reversed(slots):
        block = container[key]
        control = block["cache_control"]
        ttl = to_cache_ttl(control, model)
        if ttl:
            longest = ttl
        if longest == TTL_1H and control.get("ttl") != TTL_1H:
            container[key] = {**block, "cache_control": {**control, "ttl": TTL_1H}}
        elif longest is None and control.get("ttl") == TTL_1H:  # a 1h this model does not offer
            container[key] = {**block, "cache_control": {k: v for k, v in control.items() if k != "ttl"}}


def _native_slots(body: dict[str, Any]) -> Iterator[tuple[Any, Any]]:
    """(container, key) of every block with a ``cache_control`` object, in prompt order: tools, system,
    then messages (a tool_result's own content items before the tool_result itself). Lists that are
    the client's are replaced by copies before they are handed out."""
    if isinstance(body.get("tools"), list):
        body["tools"] = list(body["tools"])
        yield from _slots_in(body["tools"])
    if isinstance(body.get("system"), list):
        body["system"] = list(body["system"])
        yield from _slots_in(body["system"])
    if not isinstance(body.get("messages"), list):
        return
    body["messages"] = messages = list(body["messages"])
    for m, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("content"), list):
            continue
        messages[m] = message = {**message, "content": list(message["content"])}
        content = message["content"]
        for i, block in enumerate(content):
            if isinstance(block, dict) and block.get("type") == "tool_result" and isinstance(block.get("content"), list):
                content[i] = block = {**block, "content": list(block["content"])}
                yield from _slots_in(block["content"])
            if isinstance(block, dict) and isinstance(block.get("cache_control"), dict):
                yield content, i


def _slots_in(blocks: list[Any]) -> Iterator[tuple[list[Any], int]]:
    for i, block in enumerate(blocks):
        if isinstance(block, dict) and isinstance(block.get("cache_control"), dict):
            yield blocks, i
