"""app/bedrock/request.py cache points: every breakpoint the client set reaches Bedrock, within its 4.

Uses Claude Code's recorded request (tests/fixtures/claude_code_request.json) and variants of it; every
translated request is validated against botocore's ``Converse`` input shape (the vendored model the
proxy's clients use, app/bedrock/clients.py)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from botocore.validate import ParamValidator

from app.bedrock.clients import service_model
from app.bedrock.models import resolve_model
from app.bedrock.request import to_converse_request

FIXTURE = Path(__file__).parents[1] / "fixtures" / "claude_code_request.json"
EPHEMERAL = {"type": "ephemeral"}
CACHE_POINT = {"cachePoint": {"type": "default"}}


def translate(body: dict[str, Any]) -> dict[str, Any]:
    model = resolve_model(body["model"], overrides={}, profile_prefix="us")
    request = to_converse_request(body, model, betas=[])
    shape = service_model().operation_model("Converse").input_shape
    report = ParamValidator().validate(request, shape)
    assert not report.has_errors(), report.generate_report()
    return request


def positions(request: dict[str, Any]) -> list[tuple[str, int, int]]:
    """(where, list index, block index) of each cachePoint, in prompt order."""
    lists = [("tools", request.get("toolConfig", {}).get("tools", [])), ("system", request.get("system", [])),
             *((f"messages[{i}]", m["content"]) for i, m in enumerate(request["messages"]))]
    return [(name, n, i) for n, (name, blocks) in enumerate(lists) for i, b in enumerate(blocks) if b == CACHE_POINT]


def claude_code_body() -> dict[str, Any]:
    return json.loads(FIXTURE.read_text())


def with_tail_on_system_message(body: dict[str, Any], *texts: str) -> dict[str, Any]:
    """The fixture with its tail breakpoint moved to a closing ``role: system`` message."""
    body = copy.deepcopy(body)
    for message in body["messages"]:
        for block in message["content"] if isinstance(message["content"], list) else []:
            block.pop("cache_control", None)
    blocks = [{"type": "text", "text": t} for t in texts]
    blocks[-1]["cache_control"] = EPHEMERAL
    body["messages"].append({"role": "system", "content": blocks})
    return body


def test_recorded_claude_code_body_keeps_its_three_breakpoints() -> None:
    request = translate(claude_code_body())
    assert [p[0] for p in positions(request)] == ["system", "system", "messages[2]"]
    assert request["messages"][-1]["content"][-1] == CACHE_POINT  # after the tool result


def test_tail_breakpoint_on_a_system_message_follows_its_reminder() -> None:
    request = translate(with_tail_on_system_message(claude_code_body(), "Reminder one.", "Reminder two."))
    assert [p[0] for p in positions(request)] == ["system", "system", "messages[2]"]
    *_, reminder, tail = request["messages"][-1]["content"]
    assert tail == CACHE_POINT
    assert reminder == {"text": "<system-reminder>\nReminder one.\n\nReminder two.\n</system-reminder>"}


def test_string_system_message_in_the_recorded_body_is_unchanged() -> None:
    request = translate(claude_code_body())
    texts = [b.get("text", "") for b in request["messages"][0]["content"]]
    assert any(t.startswith("<system-reminder>\n# Environment") for t in texts)


def test_more_than_four_breakpoints_keep_the_last_four_in_prompt_order() -> None:
    body = with_tail_on_system_message(claude_code_body(), "tail")
    body["tools"] = copy.deepcopy(body["tools"])
    body["tools"][-1]["cache_control"] = EPHEMERAL  # 4: tools, system x2, tail
    body["messages"][0]["content"][-1]["cache_control"] = EPHEMERAL  # 5
    request = translate(body)
    assert [p[0] for p in positions(request)] == ["system", "system", "messages[0]", "messages[2]"]
    assert request["messages"][-1]["content"][-1] == CACHE_POINT  # the conversation tail is never the one dropped


@pytest.mark.parametrize("model", ["claude-3-5-sonnet-20241022"])
def test_models_without_prompt_caching_get_no_cache_points(model: str) -> None:
    body = with_tail_on_system_message({**claude_code_body(), "model": model, "thinking": None}, "tail")
    assert positions(translate(body)) == []
