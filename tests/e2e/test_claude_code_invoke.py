"""The real Claude Code CLI served through Bedrock's InvokeModelWithResponseStream (issue 13): its
requests carry tool search (the ToolSearch tool and a ``defer_loading`` placeholder), so with
``PROXY_BEDROCK_INVOKE_WHEN_NEEDED_MODELS=["*"]`` they go to the invoke route with the native body,
and the CLI reads the re-emitted native stream (a tool loop, usage) without noticing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import RunningProxy, make_settings, start_proxy
from tests.e2e.claude_cli import E2E_MARKS, run_claude
from tests.fakes.anthropic_server import FakeAnthropic, rate_limit_reply
from tests.fakes.bedrock_server import (FakeBedrock, RecordedRequest, stream_text,
                                        stream_tool_use)

pytestmark = E2E_MARKS
API_KEY = "sk-ant-api03-e2e-invoke-0123456789"


@pytest.fixture(scope="module")
def running(fakes: tuple[FakeAnthropic, FakeBedrock]) -> Iterator[RunningProxy]:
    anthropic, bedrock = fakes
    yield from start_proxy(make_settings(anthropic.url, bedrock_endpoint_url=bedrock.url,
                                         default_fallback_policy="anthropic_first",
                                         bedrock_invoke_when_needed_models=["*"]))


def claude(running: RunningProxy, key: str, prompt: str, cwd: Path, *args: str) -> Any:
    return run_claude(prompt, base_url=running.url, custom_headers=f"x-proxy-key: {key}", api_key=API_KEY,
                      cwd=cwd, extra_args=list(args), extra_env={"CLAUDE_CODE_MAX_RETRIES": "0"}, timeout_s=90)


def last_message_has_tool_result(request: RecordedRequest) -> bool:
    messages = request.json().get("messages") or []
    content = messages[-1].get("content") if messages else None
    return isinstance(content, list) and any(block.get("type") == "tool_result" for block in content)


def test_rate_limited_claude_code_tool_loop_is_served_through_invoke(
        running: RunningProxy, fakes: tuple[FakeAnthropic, FakeBedrock], tmp_path: Path) -> None:
    anthropic, bedrock = fakes
    key = running.new_key(name="invoke")["key"]
    anthropic.enqueue(rate_limit_reply(retry_after_s=30))
    bedrock.enqueue(stream_tool_use("Bash", {"command": "echo hi-from-invoke", "description": "Print a word"},
                                    chunk=7), when=lambda r: not last_message_has_tool_result(r))
    bedrock.enqueue(stream_text("The command printed hi-from-invoke."), when=last_message_has_tool_result)

    result = claude(running, key, "Run echo hi-from-invoke", tmp_path,
                    "--allowedTools", "Bash(echo:*)", "--max-turns", "3")

    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert result.result == "The command printed hi-from-invoke."
    assert result.json["usage"]["output_tokens"] > 0  # read from the re-emitted message_delta
    calls = [c for c in bedrock.requests if c.operation != "CountTokens"]
    assert {c.operation for c in calls} == {"InvokeModelWithResponseStream"}, [c.operation for c in calls]
    second = calls[-1].json()
    assert "tool-search-tool-2025-10-19" in second["anthropic_beta"]
    assert any(t.get("defer_loading") for t in second["tools"])
    tool_use = next(b for b in second["messages"][-2]["content"] if b["type"] == "tool_use")
    tool_result = next(b for b in second["messages"][-1]["content"] if b["type"] == "tool_result")
    assert tool_use["name"] == "Bash" and tool_result["tool_use_id"] == tool_use["id"]
    assert "hi-from-invoke" in json.dumps(tool_result["content"])
    assert len(anthropic.messages_requests()) == 1, "one 429, then the cooldown"
