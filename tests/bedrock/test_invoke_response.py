"""app/bedrock/invoke_response.py: native InvokeModel answers -> the client's Message and SSE events."""

from __future__ import annotations

import json
from typing import Any

import pytest

from app.bedrock.invoke_response import METRICS_KEY, InvokeStreamTranslator, parse_chunk, to_client_message
from app.bedrock.response import MalformedResponse
from app.bedrock.tool_ids import to_bedrock_id

CLIENT_MODEL = "claude-opus-4-5"
MESSAGE_ID = "msg_bdrk_0123456789abcdefghijklmn"
FOREIGN_ID = "functions.Read:0"


def native_message(**extra: Any) -> dict[str, Any]:
    return {"id": "msg_bdrk_theirs", "type": "message", "role": "assistant", "model": "claude-bedrock-name",
            "content": [{"type": "thinking", "thinking": "hmm", "signature": "c2ln"},
                        {"type": "text", "text": "ok"},
                        {"type": "tool_use", "id": to_bedrock_id(FOREIGN_ID), "name": "Read", "input": {}}],
            "stop_reason": "tool_use", "stop_sequence": None,
            "usage": {"input_tokens": 5, "output_tokens": 6, "cache_read_input_tokens": 7,
                      "cache_creation_input_tokens": 8}, **extra}


def chunk(event: dict[str, Any]) -> dict[str, Any]:
    return {"chunk": {"bytes": json.dumps(event).encode()}}


def test_message_is_the_clients() -> None:
    message = to_client_message(native_message(**{METRICS_KEY: {"inputTokenCount": 5}}), model=CLIENT_MODEL,
                                message_id=MESSAGE_ID)
    assert message["id"] == MESSAGE_ID and message["model"] == CLIENT_MODEL
    assert message["content"][2]["id"] == FOREIGN_ID
    assert message["usage"]["cache_read_input_tokens"] == 7
    assert METRICS_KEY not in message


def test_omitted_thinking_keeps_its_signature() -> None:
    message = to_client_message(native_message(), model=CLIENT_MODEL, message_id=MESSAGE_ID, omit_thinking=True)
    assert message["content"][0] == {"type": "thinking", "thinking": "", "signature": "c2ln"}


@pytest.mark.parametrize("native", [
    "text", {"content": "text"}, {"content": ["x"]}, {"content": [], "usage": {"input_tokens": "5"}},
    {"content": [], "usage": {"output_tokens": -1}}, {"content": [{"type": "tool_use", "id": 5}]}])
def test_malformed_messages_are_a_502(native: Any) -> None:
    with pytest.raises(MalformedResponse):
        to_client_message(native, model=CLIENT_MODEL, message_id=MESSAGE_ID)


@pytest.mark.parametrize("event", [
    {"chunk": {"bytes": b"not json"}}, {"chunk": {}}, {"other": {}}, {"chunk": {"bytes": b"[1]"}},
    {"chunk": {"bytes": b'{"type": 3}'}}])
def test_malformed_chunks_are_a_502(event: dict[str, Any]) -> None:
    with pytest.raises(MalformedResponse):
        parse_chunk(event)


def feed_all(translator: InvokeStreamTranslator, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for event in events:
        out += translator.feed(chunk(event))
    return out + translator.finish()


START = {"type": "message_start", "message": {"id": "msg_bdrk_theirs", "type": "message", "role": "assistant",
                                              "model": "claude-bedrock-name", "content": [], "stop_reason": None,
                                              "stop_sequence": None,
                                              "usage": {"input_tokens": 10, "cache_read_input_tokens": 20,
                                                        "output_tokens": 1}}}
DELTA = {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
         "usage": {"output_tokens": 30}}


def test_stream_events_are_the_clients() -> None:
    translator = InvokeStreamTranslator(CLIENT_MODEL, MESSAGE_ID, omit_thinking=True)
    out = feed_all(translator, [
        START,
        {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": "",
                                                                       "signature": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "secret"}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "c2ln"}},
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1, "content_block": {
            "type": "tool_use", "id": to_bedrock_id(FOREIGN_ID), "name": "Read", "input": {}}},
        {"type": "ping"},
        DELTA, {"type": "message_stop", METRICS_KEY: {"inputTokenCount": 999, "outputTokenCount": 999}}])
    assert out[0]["message"]["id"] == MESSAGE_ID and out[0]["message"]["model"] == CLIENT_MODEL
    assert "secret" not in json.dumps(out)  # thinking_delta dropped, signature kept
    assert [e["type"] for e in out] == ["message_start", "content_block_start", "content_block_delta",
                                        "content_block_stop", "content_block_start", "ping", "message_delta",
                                        "message_stop"]
    assert out[4]["content_block"]["id"] == FOREIGN_ID
    assert out[-2]["usage"] == {"output_tokens": 30}  # native counters win over the metrics
    assert out[-1] == {"type": "message_stop"}
    assert translator.usage == {"input_tokens": 10, "output_tokens": 30, "cache_creation_input_tokens": 0,
                                "cache_read_input_tokens": 20}


def test_metrics_fill_in_counters_the_native_events_did_not_report() -> None:
    translator = InvokeStreamTranslator(CLIENT_MODEL, MESSAGE_ID)
    start = {**START, "message": {**START["message"], "usage": {"output_tokens": 1}}}
    out = feed_all(translator, [start, DELTA, {"type": "message_stop", METRICS_KEY: {
        "inputTokenCount": 11, "outputTokenCount": 31, "cacheWriteInputTokenCount": 40, "invocationLatency": 5}}])
    assert out[-2]["usage"] == {"output_tokens": 30, "input_tokens": 11, "cache_creation_input_tokens": 40}
    assert translator.usage["input_tokens"] == 11


def test_a_stream_cut_before_message_stop_still_sends_its_delta_and_no_stop() -> None:
    translator = InvokeStreamTranslator(CLIENT_MODEL, MESSAGE_ID)
    assert [e["type"] for e in feed_all(translator, [START, DELTA])] == ["message_start", "message_delta"]
    assert translator.finish() == []


def test_a_bad_event_leaves_the_state_as_it_was() -> None:
    translator = InvokeStreamTranslator(CLIENT_MODEL, MESSAGE_ID)
    translator.feed(chunk(START))
    with pytest.raises(MalformedResponse):
        translator.feed(chunk({**DELTA, "usage": {"output_tokens": "many"}}))
    assert translator.usage["output_tokens"] == 1
