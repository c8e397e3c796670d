"""app/bedrock/response.py: ids and the edges of stop reasons / usage."""

from __future__ import annotations

import re

import pytest

from app.bedrock.response import MalformedResponse, new_message_id, to_message, to_stop_reason, to_stop_sequence


def test_new_message_id_shape_and_uniqueness() -> None:
    ids = {new_message_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(re.fullmatch(r"msg_bdrk_[A-Za-z0-9]{24}", i) for i in ids)


def test_to_message_generates_an_id_when_none_given() -> None:
    message = to_message({"output": {"message": {"role": "assistant", "content": []}}, "stopReason": "end_turn",
                          "usage": {"inputTokens": 1, "outputTokens": 0, "totalTokens": 1}}, model="claude-opus-4-6")
    assert message["id"].startswith("msg_bdrk_") and message["content"] == []
    assert message["model"] == "claude-opus-4-6"


def test_unknown_future_stop_reason_becomes_end_turn() -> None:
    assert to_stop_reason("something_new") == "end_turn"
    assert to_stop_reason("content_filtered") == "refusal"


def test_stop_sequence_is_unknown_with_several_candidates_and_no_native_field() -> None:
    assert to_stop_sequence("stop_sequence", None, ["A", "B"]) is None
    assert to_stop_sequence("end_turn", {"stop_sequence": "A"}, ["A"]) is None


OK_BODY = {"output": {"message": {"role": "assistant", "content": [{"text": "hi"}]}}, "stopReason": "end_turn",
           "usage": {"inputTokens": 1, "outputTokens": 2}}


@pytest.mark.parametrize("body", [
    {},                                                              # no output
    {**OK_BODY, "output": "text"},
    {**OK_BODY, "output": {"message": None}},
    {**OK_BODY, "output": {"message": {"content": "abc"}}},
    {**OK_BODY, "output": {"message": {"content": ["x", 5]}}},
    {**OK_BODY, "output": {"message": {"content": [{"text": 5}]}}},
    {**OK_BODY, "output": {"message": {"content": [{"toolUse": {}}]}}},
    {**OK_BODY, "output": {"message": {"content": [{"toolUse": {"toolUseId": "t", "name": ["x"]}}]}}},
    {**OK_BODY, "output": {"message": {"content": [{"reasoningContent": {"reasoningText": {"text": 1}}}]}}},
    {**OK_BODY, "output": {"message": {"content": [{"reasoningContent": {"redactedContent": 7}}]}}},
    {**OK_BODY, "stopReason": 5},
    {**OK_BODY, "usage": "x"},
    {**OK_BODY, "usage": {"inputTokens": "12"}},
    {**OK_BODY, "usage": {"inputTokens": True}},
    {**OK_BODY, "usage": {"outputTokens": -3}},
    {**OK_BODY, "usage": {"outputTokens": 1.5}},
    [1, 2],
])
def test_a_malformed_converse_body_is_a_502_never_a_key_or_type_error(body: object) -> None:
    with pytest.raises(MalformedResponse) as info:
        to_message(body, model="claude-opus-4-6")  # type: ignore[arg-type]
    assert (info.value.status_code, info.value.error_type) == (502, "api_error")
    assert info.value.message.startswith("Bedrock: malformed response")


def test_a_well_formed_body_still_translates() -> None:
    message = to_message(OK_BODY, model="claude-opus-4-6")
    assert message["content"] == [{"type": "text", "text": "hi"}]
    assert message["usage"]["output_tokens"] == 2
