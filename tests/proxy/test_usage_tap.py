"""UsageTap reads usage from Anthropic SSE bytes however they are split."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.proxy.usage_tap import UsageTap, plain_delta_chars
from app.usage.floor import delta_text_chars

STREAM = (
    'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1","model":"claude-x",'
    '"usage":{"input_tokens":10,"cache_creation_input_tokens":5,"cache_read_input_tokens":7,'
    '"cache_creation":{"ephemeral_5m_input_tokens":3,"ephemeral_1h_input_tokens":2},"output_tokens":1}}}\n\n'
    'event: ping\ndata: {"type":"ping"}\n\n'
    'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
    '"delta":{"type":"text_delta","text":"caf\u00e9 \u2615"}}\n\n'
    'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"},'
    '"usage":{"output_tokens":42}}\n\n'
    'event: message_stop\ndata: {"type":"message_stop"}\n\n').encode()


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, len(STREAM)])
def test_usage_read_at_any_split(size: int) -> None:
    tap = UsageTap()
    for i in range(0, len(STREAM), size):
        tap.feed(STREAM[i:i + size])
    assert tap.usage == {"input_tokens": 10, "output_tokens": 42, "cache_creation_input_tokens": 5,
                         "cache_read_input_tokens": 7, "cache_creation_1h_input_tokens": 2}
    assert tap.complete and tap.stop_reason == "end_turn" and tap.model == "claude-x"


def test_crlf_framing_and_error_event() -> None:
    tap = UsageTap()
    error = json.dumps({"type": "error", "error": {"type": "overloaded_error", "message": "x"}})
    tap.feed(f"event: error\r\ndata: {error}\r\n\r\n".encode())
    assert tap.error_type == "overloaded_error" and not tap.complete


def test_message_delta_may_restate_input_counts() -> None:
    tap = UsageTap()
    tap.feed(STREAM.replace(b'"usage":{"output_tokens":42}', b'"usage":{"output_tokens":42,"input_tokens":11}'))
    assert tap.usage["input_tokens"] == 11


def test_message_delta_cache_creation_sets_the_1h_part() -> None:
    """The Bedrock fallback's stream states its 1h cache writes in message_delta (app/bedrock/stream.py)."""
    tap = UsageTap()
    tap.feed(STREAM.replace(b'"usage":{"output_tokens":42}', b'"usage":{"output_tokens":42,'
                            b'"cache_creation_input_tokens":9,"cache_creation":{"ephemeral_1h_input_tokens":6}}'))
    assert (tap.usage["cache_creation_input_tokens"], tap.usage["cache_creation_1h_input_tokens"]) == (9, 6)


@pytest.mark.parametrize("data", ["[1,2]", '"text"', "null", "not json", "[" * 5000 + "]" * 5000])
def test_a_usage_event_whose_data_is_not_an_object_marks_the_tap_malformed(data: str) -> None:
    tap = UsageTap()
    tap.feed(f"event: message_delta\ndata: {data}\n\n".encode())
    assert tap.malformed == "message_delta"
    assert tap.usage["output_tokens"] == 0


def test_usage_counts_that_are_not_sane_numbers_count_as_zero() -> None:
    tap = UsageTap()
    usage = {"input_tokens": "abc", "output_tokens": -5, "cache_read_input_tokens": True,
             "cache_creation_input_tokens": 7.0, "cache_creation": [1]}
    tap.feed(b"event: message_start\ndata: " + json.dumps({"message": {"usage": usage, "model": 5}}).encode()
             + b"\n\nevent: message_delta\ndata: " + b'{"usage": {"output_tokens": NaN}, "delta": []}' + b"\n\n")
    assert tap.malformed is None and tap.model is None
    assert tap.usage == {"input_tokens": 0, "output_tokens": 0, "cache_creation_input_tokens": 7,
                         "cache_read_input_tokens": 0, "cache_creation_1h_input_tokens": 0}


_DELTA_KINDS = [("text_delta", "text"), ("thinking_delta", "thinking"), ("input_json_delta", "partial_json"),
                ("signature_delta", "signature")]


@settings(max_examples=300, deadline=None)
@given(kind=st.sampled_from(_DELTA_KINDS), value=st.text(), index=st.integers(0, 99), ascii_only=st.booleans(),
       tail=st.sampled_from(["", " ", "}", '"x":1}']))
def test_a_delta_counted_without_a_parse_counts_what_the_parse_counts(kind: tuple[str, str], value: str,
                                                                        index: int, ascii_only: bool,
                                                                        tail: str) -> None:
    """The parse-free count of a content_block_delta (Anthropic's framing, no escapes) equals the
    JSON-parsed count, or declines (-1) and the tap parses; the tap's total is the parse's either way."""
    delta_type, field = kind
    payload = {"type": "content_block_delta", "index": index, "delta": {"type": delta_type, field: value}}
    data = json.dumps(payload, separators=(",", ":"), ensure_ascii=ascii_only)
    data = data[:-1] + tail if tail else data  # sometimes not Anthropic's exact framing, or not JSON
    line = b"data: " + data.encode()
    parsed = delta_text_chars(data)
    fast = plain_delta_chars(line)
    assert fast in (-1, parsed)
    if tail == "" and delta_type != "signature_delta" and all(c >= " " and c not in '"\\' for c in value) \
            and (ascii_only is False or all(" " <= c <= "~" for c in value)):  # json escapes DEL too
        assert fast == parsed == len(value)  # the common case takes the fast path
    tap = UsageTap()
    tap.feed(b"event: content_block_delta\n" + line + b"\n\n")
    assert tap.delta_chars == parsed and tap.content_started


_NAMES = ["message_start", "message_delta", "error", "content_block_delta", "content_block_start",
          "content_block_stop", "message_stop", "ping", "other", "message_start "]
_DATA = [
    '{"type":"message_start","message":{"model":"m","usage":{"input_tokens":3,"output_tokens":1}}}',
    '{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":9}}',
    '{"type":"error","error":{"type":"overloaded_error","message":"x"}}',
    '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"h\\u00e9 \\"q\\""}}',
    '{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\\"a"}}',
    "[1]", "not json", "", '{"type":"ping"}']


def _state(tap: UsageTap) -> tuple[object, ...]:
    return (tap.usage, tap.model, tap.stop_reason, tap.error_type, tap.complete, tap.content_started,
            tap.malformed, tap.delta_chars)


@settings(max_examples=300, deadline=None)
@given(events=st.lists(st.tuples(st.sampled_from(_NAMES), st.sampled_from(_DATA),
                                 st.sampled_from(["framed", "no space", "comment", "two data lines", "data first"])),
                       min_size=1, max_size=8),
       size=st.integers(1, 400))
def test_events_in_anthropics_framing_come_to_what_the_line_by_line_reading_does(
        events: list[tuple[str, str, str]], size: int) -> None:
    """The framed fast path (one event line, one data line: dispatched on the name) against the
    line-by-line reading of every event (``_on_block``), for framed and other spellings, any split."""
    blocks = []
    for name, data, framing in events:
        blocks.append({"framed": f"event: {name}\ndata: {data}", "no space": f"event:{name}\ndata:{data}",
                       "comment": f": c\nevent: {name}\ndata: {data}",
                       "two data lines": f"event: {name}\ndata: {data}\ndata: ",
                       "data first": f"data: {data}\nevent: {name}"}[framing].encode())
    stream = b"".join(block + b"\n\n" for block in blocks)
    tap = UsageTap()
    for i in range(0, len(stream), size):
        tap.feed(stream[i:i + size])
    reference = UsageTap()
    for block in blocks:
        reference._on_block(block)
        if reference.malformed is not None:
            break
    assert _state(tap) == _state(reference)
