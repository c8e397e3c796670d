"""The real Claude Code CLI keeps working when Anthropic rate-limits it: the proxy serves the same
turns from a fake Bedrock (real aioboto3, real event-stream framing), and the CLI cannot tell.

Each request Claude Code sends is the real thing (adaptive thinking, ``context_management``, role
``system`` turns, many ``anthropic-beta`` values, ``defer_loading`` tools), so the fake Bedrock's
validation (botocore's own parameter validation included: the proxy's client skips it, the fake runs it) sees
exactly what production would."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import RunningProxy, make_settings, start_proxy
from tests.e2e.claude_cli import E2E_MARKS, run_claude
from tests.fakes.anthropic_server import FakeAnthropic, rate_limit_reply, running_fake_anthropic
from tests.fakes.bedrock_server import (FakeBedrock, RecordedRequest, Reply, running_fake_bedrock, stream_text,
                                        stream_tool_use)
from tests.fakes.bedrock_server import message_reply as bedrock_message
from tests.fakes.bedrock_server import reasoning_block, tool_use_block

pytestmark = E2E_MARKS
API_KEY = "sk-ant-api03-e2e-fallback-0123456789"
SIGNATURE = "EpcCCkYIBhgCKkD2+bedrock/signed=="


@pytest.fixture(scope="module")
def anthropic_fake() -> Iterator[FakeAnthropic]:
    with running_fake_anthropic() as fake:
        yield fake


@pytest.fixture(scope="module")
def bedrock_fake() -> Iterator[FakeBedrock]:
    with running_fake_bedrock() as fake:
        yield fake


@pytest.fixture(scope="module")
def running(anthropic_fake: FakeAnthropic, bedrock_fake: FakeBedrock) -> Iterator[RunningProxy]:
    yield from start_proxy(make_settings(anthropic_fake.url, bedrock_endpoint_url=bedrock_fake.url,
                                         default_fallback_policy="anthropic_first"))


@pytest.fixture
def fakes(anthropic_fake: FakeAnthropic, bedrock_fake: FakeBedrock) -> tuple[FakeAnthropic, FakeBedrock]:
    anthropic_fake.reset()
    bedrock_fake.reset()
    return anthropic_fake, bedrock_fake


def claude(running: RunningProxy, key: str, prompt: str, cwd: Path, *args: str) -> Any:
    return run_claude(prompt, base_url=running.url, custom_headers=f"x-proxy-key: {key}", api_key=API_KEY,
                      cwd=cwd, extra_args=list(args), extra_env={"CLAUDE_CODE_MAX_RETRIES": "0"}, timeout_s=90)


def last_message_has_tool_result(request: RecordedRequest) -> bool:
    messages = request.json().get("messages") or []
    return bool(messages) and any("toolResult" in block for block in messages[-1].get("content", []))


def test_rate_limited_claude_code_is_served_by_bedrock_and_cooldown_skips_anthropic(
        running: RunningProxy, fakes: tuple[FakeAnthropic, FakeBedrock], tmp_path: Path) -> None:
    anthropic, bedrock = fakes
    key = running.new_key(name="fallback")["key"]
    anthropic.enqueue(rate_limit_reply(retry_after_s=30))
    bedrock.enqueue(stream_text("Served by Bedrock, unnoticed.", chunk=5))

    first = claude(running, key, "Say hello", tmp_path)

    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    assert first.result == "Served by Bedrock, unnoticed."
    assert len(anthropic.messages_requests()) == 1, "one 429, then the cooldown"
    [call] = bedrock.calls("ConverseStream")
    assert call.model_id.startswith("us.anthropic.claude-")  # an inference profile, never a bare model id
    assert all(API_KEY not in value and key not in value for _, value in call.headers)
    sent = call.json()
    assert "context_management" not in json.dumps(sent)  # dropped on purpose (docs/translation.md)
    assert all(block.get("text") != "" for message in sent["messages"] for block in message["content"])
    assert first.json["usage"]["output_tokens"] > 0  # Claude Code read usage from message_delta

    anthropic.reset()
    bedrock.enqueue(stream_text("Still Bedrock.", chunk=5))
    second = claude(running, key, "Say hello again", tmp_path)

    assert second.result == "Still Bedrock.", second.stdout[-2000:] + second.stderr[-2000:]
    assert anthropic.messages_requests() == [], "within the cooldown Anthropic is not touched"
    totals = running.wait_for_usage(lambda t: t["requests"] >= 2, provider="bedrock")
    assert totals["requests"] >= 2


def test_tool_use_round_trip_on_bedrock(running: RunningProxy, fakes: tuple[FakeAnthropic, FakeBedrock],
                                        tmp_path: Path) -> None:
    anthropic, bedrock = fakes
    key = running.new_key(name="tools", fallback_policy="bedrock_only")["key"]
    bedrock.enqueue(stream_tool_use("Bash", {"command": "echo hi-from-bedrock", "description": "Print a word"},
                                    chunk=7), when=lambda r: not last_message_has_tool_result(r))
    bedrock.enqueue(stream_text("The command printed hi-from-bedrock."), when=last_message_has_tool_result)

    result = claude(running, key, "Run echo hi-from-bedrock", tmp_path,
                    "--allowedTools", "Bash(echo:*)", "--max-turns", "3")

    assert result.result == "The command printed hi-from-bedrock.", result.stdout[-2000:] + result.stderr[-2000:]
    assert result.json["num_turns"] == 2
    first, second = bedrock.calls("ConverseStream")
    tool_use = next(block["toolUse"] for block in second.json()["messages"][-2]["content"] if "toolUse" in block)
    tool_result = next(block["toolResult"] for block in second.json()["messages"][-1]["content"]
                       if "toolResult" in block)
    assert tool_use["name"] == "Bash" and tool_use["input"]["command"] == "echo hi-from-bedrock"
    assert tool_result["toolUseId"] == tool_use["toolUseId"]
    assert "hi-from-bedrock" in json.dumps(tool_result["content"])
    assert tool_result.get("status") != "error"
    assert "toolConfig" in first.json() and anthropic.requests == []
    assert bedrock.pending == []


def test_thinking_signature_survives_the_second_turn(running: RunningProxy,
                                                     fakes: tuple[FakeAnthropic, FakeBedrock], tmp_path: Path) -> None:
    _, bedrock = fakes
    key = running.new_key(name="thinking", fallback_policy="bedrock_only")["key"]
    turn_one: Reply = bedrock_message(reasoning_block("I should run echo.", SIGNATURE),
                                      tool_use_block("Bash", {"command": "echo thought", "description": "Echo"}),
                                      chunk=6)
    bedrock.enqueue(turn_one, when=lambda r: not last_message_has_tool_result(r))
    bedrock.enqueue(stream_text("done thinking"), when=last_message_has_tool_result)

    result = claude(running, key, "Think, then run echo thought", tmp_path,
                    "--allowedTools", "Bash(echo:*)", "--max-turns", "3")

    assert result.result == "done thinking", result.stdout[-2000:] + result.stderr[-2000:]
    second = bedrock.calls("ConverseStream")[-1].json()
    assistant = second["messages"][-2]
    reasoning = next(block["reasoningContent"] for block in assistant["content"] if "reasoningContent" in block)
    assert reasoning["reasoningText"]["signature"] == SIGNATURE  # byte for byte, not re-encoded
