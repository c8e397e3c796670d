"""app/bedrock/response.py: ids and the edges of stop reasons / usage."""

from __future__ import annotations

import re

from app.bedrock.response import new_message_id, to_message, to_stop_reason, to_stop_sequence


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
