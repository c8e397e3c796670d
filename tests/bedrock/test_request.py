"""app/bedrock/request.py: behaviours the golden cases do not pin down one by one."""

from __future__ import annotations

import copy

import pytest

from app.bedrock.models import resolve_model
from app.bedrock.request import dropped_fields, to_converse_request
from app.errors import InvalidRequest

MODEL = resolve_model("claude-sonnet-4-5", overrides={}, profile_prefix="us")
TOOL = {"name": "Read", "input_schema": {"type": "object"}}


def params(**extra):
    return {"model": "claude-sonnet-4-5", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}], **extra}


def test_params_are_not_mutated() -> None:
    original = params(system=[{"type": "text", "text": "s", "cache_control": {"type": "ephemeral"}}],
                      tools=[{**TOOL, "defer_loading": True}], tool_choice={"type": "any"},
                      messages=[{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": ""}]},
                                {"role": "user", "content": "b"}])
    snapshot = copy.deepcopy(original)
    to_converse_request(original, MODEL, betas=["x"])
    assert original == snapshot


def test_tool_choice_any() -> None:
    request = to_converse_request(params(tools=[TOOL], tool_choice={"type": "any"}), MODEL, betas=[])
    assert request["toolConfig"]["toolChoice"] == {"any": {}}


def test_tool_choice_none_without_history_sends_no_tool_config() -> None:
    assert "toolConfig" not in to_converse_request(params(tools=[TOOL], tool_choice={"type": "none"}), MODEL, betas=[])


def test_cache_points_dropped_for_models_without_prompt_caching() -> None:
    model = resolve_model("claude-3-5-sonnet", overrides={}, profile_prefix="us")
    request = to_converse_request(params(system=[{"type": "text", "text": "s", "cache_control": {"type": "ephemeral"}}]),
                                  model, betas=[])
    assert request["system"] == [{"text": "s"}]


@pytest.mark.parametrize(("block", "message"), [
    ({"type": "image", "source": {"type": "file", "file_id": "f"}}, "image source type 'file'"),
    ({"type": "image", "source": {"type": "base64", "media_type": "image/bmp", "data": "AAAA"}}, "image/bmp"),
    ({"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "not base64!"}}, "not valid base64"),
    ({"type": "document", "source": {"type": "url", "url": "https://x/a.pdf"}}, "document source 'url'"),
    ({"type": "mystery"}, "'mystery'"),
])
def test_untranslatable_content_is_rejected_clearly(block, message) -> None:
    with pytest.raises(InvalidRequest) as info:
        to_converse_request(params(messages=[{"role": "user", "content": [block]}]), MODEL, betas=[])
    assert message in info.value.message


def test_missing_max_tokens_is_rejected() -> None:
    with pytest.raises(InvalidRequest, match="max_tokens"):
        to_converse_request({"messages": []}, MODEL, betas=[])


def test_thinking_disabled_and_unsupported_model_send_nothing() -> None:
    assert "additionalModelRequestFields" not in to_converse_request(params(thinking={"type": "disabled"}), MODEL, betas=[])
    haiku35 = resolve_model("claude-3-5-haiku", overrides={}, profile_prefix="us")
    request = to_converse_request(params(thinking={"type": "enabled", "budget_tokens": 2000}), haiku35, betas=[])
    assert "additionalModelRequestFields" not in request


def test_adaptive_thinking_with_small_max_tokens_on_older_model_is_dropped() -> None:
    request = to_converse_request(params(thinking={"type": "adaptive"}, max_tokens=1000), MODEL, betas=[])
    assert "additionalModelRequestFields" not in request


def test_duplicate_betas_are_sent_once() -> None:
    request = to_converse_request(params(), MODEL, betas=["interleaved-thinking-2025-05-14"] * 2)
    assert request["additionalModelRequestFields"]["anthropic_beta"] == ["interleaved-thinking-2025-05-14"]


def test_document_names_stay_within_bedrock_limits() -> None:
    doc = {"type": "document", "title": "a_" * 300 + "!!", "source": {"type": "text", "media_type": "text/plain", "data": "x"}}
    request = to_converse_request(params(messages=[{"role": "user", "content": [doc, doc]}]), MODEL, betas=[])
    names = [b["document"]["name"] for b in request["messages"][0]["content"]]
    assert len(set(names)) == 2 and all(len(n) <= 200 for n in names)
    assert all(set(n) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 -()[]") for n in names)


def test_dropped_fields_lists_known_and_unknown_fields() -> None:
    assert dropped_fields(params(stream=True, context_management={}, brand_new=1)) == ["brand_new", "context_management", "stream"]
