"""app/bedrock/stream.py: SSE framing, finish() safety and the usage property."""

from __future__ import annotations

import json

import pytest

from app.bedrock.response import MalformedResponse
from app.bedrock.stream import StreamTranslator, encode_sse, ping_event

META = {"metadata": {"usage": {"inputTokens": 10, "outputTokens": 5, "totalTokens": 45, "cacheReadInputTokens": 30},
                     "metrics": {"latencyMs": 1}}}


def test_encode_sse_is_compact_utf8() -> None:
    frame = encode_sse({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "é"}})
    assert frame == 'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"é"}}\n\n'.encode()


def test_ping_event() -> None:
    assert ping_event() == b'event: ping\ndata: {"type":"ping"}\n\n'


def test_finish_is_idempotent_and_nothing_follows_message_stop() -> None:
    translator = StreamTranslator("claude-sonnet-4-5", "msg_1")
    translator.feed({"messageStart": {"role": "assistant"}})
    translator.feed({"messageStop": {"stopReason": "end_turn"}})
    assert [e["type"] for e in translator.feed(META)] == ["message_delta", "message_stop"]
    assert translator.finish() == []
    assert translator.feed({"contentBlockDelta": {"contentBlockIndex": 0, "delta": {"text": "late"}}}) == []


def test_finish_on_an_empty_stream_still_produces_a_whole_message() -> None:
    events = StreamTranslator("claude-sonnet-4-5", "msg_1").finish()
    assert [e["type"] for e in events] == ["message_start", "message_delta", "message_stop"]


def test_usage_is_available_before_and_after_metadata() -> None:
    translator = StreamTranslator("claude-sonnet-4-5", "msg_1")
    translator.feed({"messageStart": {"role": "assistant"}})
    assert translator.usage == {"input_tokens": 0, "output_tokens": 0, "cache_read_input_tokens": 0,
                                "cache_creation_input_tokens": 0}
    translator.feed(META)  # metadata before messageStop: held, no message_delta yet
    assert translator.usage == {"input_tokens": 10, "output_tokens": 5, "cache_read_input_tokens": 30,
                                "cache_creation_input_tokens": 0}
    out = translator.feed({"messageStop": {"stopReason": "tool_use"}})
    assert out == []
    delta = translator.finish()[0]
    assert delta["delta"]["stop_reason"] == "tool_use" and delta["usage"]["cache_read_input_tokens"] == 30


def test_message_start_never_names_the_bedrock_model() -> None:
    event = StreamTranslator("claude-opus-4-6", "msg_1").feed({"messageStart": {"role": "assistant"}})[0]
    assert event["message"]["model"] == "claude-opus-4-6"
    assert "anthropic." not in json.dumps(event)


@pytest.mark.parametrize("event", [
    "not an event",
    {"contentBlockStart": "x"},
    {"contentBlockStart": {"contentBlockIndex": 0, "start": {"toolUse": {"name": "Bash"}}}},
    {"contentBlockStart": {"contentBlockIndex": "0", "start": {"toolUse": {"toolUseId": "t", "name": "Bash"}}}},
    {"contentBlockDelta": {"contentBlockIndex": 0, "delta": {"text": 5}}},
    {"contentBlockDelta": {"contentBlockIndex": 0, "delta": "text"}},
    {"contentBlockDelta": {"contentBlockIndex": 0, "delta": {"toolUse": {"input": {"a": 1}}}}},
    {"contentBlockDelta": {"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": ["x"]}}}},
    {"contentBlockStop": []},
    {"messageStop": {"stopReason": 7}},
    {"metadata": {"usage": {"inputTokens": "10"}}},
    {"metadata": {"usage": {"outputTokens": -1}}},
    {"metadata": "x"},
])
def test_a_malformed_event_raises_a_502_and_usage_still_reads(event: object) -> None:
    translator = StreamTranslator("claude-sonnet-4-5", "msg_1")
    translator.feed({"messageStart": {"role": "assistant"}})
    with pytest.raises(MalformedResponse) as info:
        translator.feed(event)  # type: ignore[arg-type]
    assert info.value.status_code == 502
    assert translator.usage["input_tokens"] == 0  # never raises, even after a bad metadata event
    assert [e["type"] for e in translator.finish()][-2:] == ["message_delta", "message_stop"]
