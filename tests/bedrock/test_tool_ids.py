"""app/bedrock/tool_ids.py: every id maps to one Bedrock accepts, and back to the client's own id."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.bedrock.clients import service_model
from app.bedrock.models import resolve_model
from app.bedrock.request import to_converse_request
from app.bedrock.response import to_message
from app.bedrock.tool_ids import DIGEST_PREFIX, ENCODED_PREFIX, MAX_LENGTH, from_bedrock_id, to_bedrock_id


def _tool_use_id_rule() -> tuple[re.Pattern[str], int, int]:
    """``ToolUseId`` as botocore's own bedrock-runtime model states it (pattern, min, max)."""
    shape = service_model().shape_for("ToolUseId")
    return re.compile(shape.metadata["pattern"]), shape.metadata["min"], shape.metadata["max"]


PATTERN, MIN_LEN, MAX_LEN = _tool_use_id_rule()
ANY_ID = st.text(alphabet=st.characters(codec="utf-8"), max_size=80) | st.text(max_size=80)
BEDROCK_MINTED = st.from_regex(r"\A(tooluse_|toolu_bdrk_|toolu_)[a-zA-Z0-9_-]{1,40}\Z")


def accepted_by_bedrock(tool_use_id: str) -> bool:
    return bool(PATTERN.fullmatch(tool_use_id)) and MIN_LEN <= len(tool_use_id) <= MAX_LEN


def test_the_module_uses_the_service_models_limits() -> None:
    assert (MIN_LEN, MAX_LEN) == (1, MAX_LENGTH)


@given(ANY_ID)
def test_every_id_maps_to_one_bedrock_accepts(tool_use_id: str) -> None:
    assert accepted_by_bedrock(to_bedrock_id(tool_use_id))
    assert to_bedrock_id(tool_use_id) == to_bedrock_id(tool_use_id)  # deterministic: pairs stay paired


@given(ANY_ID)
def test_round_trip_whenever_the_encoding_fits(tool_use_id: str) -> None:
    bedrock_id = to_bedrock_id(tool_use_id)
    if not bedrock_id.startswith(DIGEST_PREFIX):
        assert from_bedrock_id(bedrock_id) == tool_use_id


@given(st.text(max_size=44).filter(lambda s: len(s.encode("utf-8", "surrogatepass")) <= 44))
def test_ids_up_to_44_utf8_bytes_always_round_trip(tool_use_id: str) -> None:
    assert from_bedrock_id(to_bedrock_id(tool_use_id)) == tool_use_id


@given(ANY_ID, ANY_ID)
def test_different_ids_never_collide(a: str, b: str) -> None:
    if a != b:
        assert to_bedrock_id(a) != to_bedrock_id(b)


@given(BEDROCK_MINTED)
def test_ids_bedrock_mints_pass_both_ways_unchanged(bedrock_id: str) -> None:
    assert from_bedrock_id(bedrock_id) == bedrock_id
    assert to_bedrock_id(bedrock_id) == bedrock_id


@pytest.mark.parametrize("tricky", [ENCODED_PREFIX, ENCODED_PREFIX + "abc", DIGEST_PREFIX + "x",
                                    ENCODED_PREFIX + "ZnVuY3Rpb25zLlJlYWQ6MA", "", "a" * 64, "é" * 22, "é", "\ud800"])
def test_ids_that_look_encoded_or_sit_at_the_limits_round_trip(tricky: str) -> None:
    bedrock_id = to_bedrock_id(tricky)
    assert accepted_by_bedrock(bedrock_id)
    assert from_bedrock_id(bedrock_id) == tricky


def test_undecodable_lookalikes_pass_unchanged() -> None:
    for bedrock_id in (ENCODED_PREFIX + "!!", ENCODED_PREFIX + "_w", ENCODED_PREFIX + "dG9vbHVfMDE"):
        assert from_bedrock_id(bedrock_id) == bedrock_id  # "dG9vbHVfMDE" is "toolu_01", never encoded


def test_translators_use_the_mapping_both_ways() -> None:
    model = resolve_model("claude-sonnet-4-5", overrides={}, profile_prefix="us")
    client_id = "functions.Read:0"
    params = {"model": "claude-sonnet-4-5", "max_tokens": 64, "tools": [{"name": "Read", "input_schema": {"type": "object"}}],
              "messages": [{"role": "user", "content": "read"},
                           {"role": "assistant", "content": [{"type": "tool_use", "id": client_id, "name": "Read", "input": {}}]},
                           {"role": "user", "content": [{"type": "tool_result", "tool_use_id": client_id, "content": "x"}]}]}
    request = to_converse_request(params, model, betas=[])
    sent = [b.get("toolUse", b.get("toolResult"))["toolUseId"] for m in request["messages"] for b in m["content"]
            if "toolUse" in b or "toolResult" in b]
    assert len(sent) == 2 and sent[0] == sent[1] and accepted_by_bedrock(sent[0])
    answer = {"output": {"message": {"role": "assistant", "content": [
        {"toolUse": {"toolUseId": sent[0], "name": "Read", "input": {}}}]}}, "stopReason": "tool_use",
        "usage": {"inputTokens": 1, "outputTokens": 1, "totalTokens": 2}}
    assert to_message(answer, model="claude-sonnet-4-5")["content"][0]["id"] == client_id


def test_long_ids_get_a_stable_digest_that_stays_as_it_is() -> None:
    long_id = "call_" + "x" * 60
    bedrock_id = to_bedrock_id(long_id)
    assert bedrock_id.startswith(DIGEST_PREFIX) and accepted_by_bedrock(bedrock_id)
    assert from_bedrock_id(bedrock_id) == bedrock_id  # Converse never echoes it back; nothing to decode
