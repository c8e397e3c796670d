"""Property: any valid ConverseStream event sequence, translated and framed as SSE, is accepted by the
official ``anthropic`` SDK's stream accumulator and yields exactly the message the events imply.

The SDK (anthropic 2.12.0) talks through ``httpx2``; a MockTransport serves our SSE bytes.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import anthropic
import httpx2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.bedrock.shapes import STOP_REASONS
from app.bedrock.stream import StreamTranslator, encode_sse

MODEL = "claude-opus-4-6"
TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=12)
JSON_VALUE = st.recursive(st.none() | st.booleans() | st.integers(-10**6, 10**6) | TEXT,
                          lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
                          max_leaves=6)


@st.composite
def chunks(draw: Any, whole: str) -> list[str]:
    """``whole`` cut at random points (mid-token, mid-escape): non-empty pieces in order."""
    cuts = sorted(set(draw(st.lists(st.integers(1, max(1, len(whole) - 1)), max_size=5))))
    bounds = [0, *[c for c in cuts if 0 < c < len(whole)], len(whole)]
    return [whole[a:b] for a, b in zip(bounds, bounds[1:], strict=False) if whole[a:b]]


@st.composite
def blocks(draw: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One Converse block as events (index filled later) + the Anthropic block it implies."""
    kind = draw(st.sampled_from(["text", "reasoning", "redacted", "tool"]))
    if kind == "text":
        parts = draw(st.lists(TEXT, min_size=1, max_size=4))
        return [{"delta": {"text": p}} for p in parts], {"type": "text", "text": "".join(parts)}
    if kind == "reasoning":
        parts = draw(st.lists(TEXT, min_size=1, max_size=4))
        signature = base64.b64encode(draw(st.binary(min_size=4, max_size=40))).decode()
        events = [{"delta": {"reasoningContent": {"text": p}}} for p in parts]
        events.append({"delta": {"reasoningContent": {"signature": signature}}})
        return events, {"type": "thinking", "thinking": "".join(parts), "signature": signature}
    if kind == "redacted":
        pieces = draw(st.lists(st.binary(min_size=1, max_size=16), min_size=1, max_size=3))
        data = base64.b64encode(b"".join(pieces)).decode()
        return [{"delta": {"reasoningContent": {"redactedContent": p}}} for p in pieces], {"type": "redacted_thinking", "data": data}
    tool_input = draw(st.dictionaries(TEXT, JSON_VALUE, max_size=4))
    tool_id = "tooluse_" + draw(st.text(alphabet="abcdefXYZ0123456789", min_size=6, max_size=12))
    name = draw(st.sampled_from(["Bash", "Read", "Edit", "mcp__srv__do_thing"]))
    raw = json.dumps(tool_input, ensure_ascii=draw(st.booleans()))
    events = [{"start": {"toolUse": {"toolUseId": tool_id, "name": name}}}]
    events += [{"delta": {"toolUse": {"input": piece}}} for piece in draw(chunks(raw))]
    return events, {"type": "tool_use", "id": tool_id, "name": name, "input": tool_input}


@st.composite
def conversations(draw: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """A whole ConverseStream (messageStart .. metadata) + the final Anthropic message it implies."""
    events: list[dict[str, Any]] = [{"messageStart": {"role": "assistant"}}]
    content = []
    for index, (block_events, expected) in enumerate(draw(st.lists(blocks(), max_size=5))):
        for event in block_events:
            key = "contentBlockStart" if "start" in event else "contentBlockDelta"
            events.append({key: {"contentBlockIndex": index, **event}})
        events.append({"contentBlockStop": {"contentBlockIndex": index}})
        content.append(expected)
    stop_reason = draw(st.sampled_from(sorted(STOP_REASONS)))
    usage = {"inputTokens": draw(st.integers(0, 10**6)), "outputTokens": draw(st.integers(0, 10**5)),
             "cacheReadInputTokens": draw(st.integers(0, 10**6)), "cacheWriteInputTokens": draw(st.integers(0, 10**5))}
    usage["totalTokens"] = sum(usage.values())
    events.append({"messageStop": {"stopReason": stop_reason}})
    if draw(st.booleans()):  # a stream may end without metadata: finish() must still close it
        events.append({"metadata": {"usage": usage, "metrics": {"latencyMs": 5}}})
    else:
        usage = dict.fromkeys(usage, 0)
    expected = {"content": content, "stop_reason": STOP_REASONS[stop_reason],
                "usage": {"input_tokens": usage["inputTokens"], "output_tokens": usage["outputTokens"],
                          "cache_read_input_tokens": usage["cacheReadInputTokens"],
                          "cache_creation_input_tokens": usage["cacheWriteInputTokens"]}}
    return events, expected


_BODY: list[bytes] = [b""]  # what the mock upstream answers next


def _handler(request: httpx2.Request) -> httpx2.Response:
    return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=_BODY[0])


_CLIENT = anthropic.Anthropic(api_key="x", base_url="http://test", max_retries=0,
                              http_client=httpx2.Client(transport=httpx2.MockTransport(_handler)))


def final_message(sse: bytes) -> anthropic.types.Message:
    _BODY[0] = sse
    with _CLIENT.messages.stream(model=MODEL, max_tokens=100, messages=[{"role": "user", "content": "hi"}]) as stream:
        return stream.get_final_message()


@settings(max_examples=75, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conversations())
def test_sdk_accumulates_the_message_the_converse_events_imply(case: tuple[list[dict[str, Any]], dict[str, Any]]) -> None:
    events, expected = case
    translator = StreamTranslator(MODEL, "msg_bdrk_property")
    out = [e for event in events for e in translator.feed(event)] + translator.finish()
    message = final_message(b"".join(encode_sse(e) for e in out))

    assert message.id == "msg_bdrk_property" and message.model == MODEL
    assert [b.model_dump(exclude_none=True) for b in message.content] == expected["content"]
    assert message.stop_reason == expected["stop_reason"]
    usage = message.usage
    assert {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens,
            "cache_read_input_tokens": usage.cache_read_input_tokens,
            "cache_creation_input_tokens": usage.cache_creation_input_tokens} == expected["usage"]
    assert translator.usage == expected["usage"]
