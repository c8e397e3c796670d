"""The real Claude Code CLI straight against FakeAnthropic (no proxy): proves the harness that
the proxy's e2e tests stand on, and that tests/fixtures/claude_code_request.json still matches
what the pinned CLI sends."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.claude_cli import E2E_MARKS, CLAUDE_BIN_ENV, E2E_DIR, FIXTURES_DIR, run_claude
from tests.fakes.anthropic_server import (
    DEFAULT_TEXT,
    FakeAnthropic,
    ends_with_tool_result,
    has_tools,
    overloaded_reply,
    running_fake_anthropic,
    text_reply,
    tool_use_reply,
)

pytestmark = E2E_MARKS
API_KEY = "sk-ant-api03-e2e-test-key-0123456789"


@pytest.fixture(scope="module")
def server() -> Iterator[FakeAnthropic]:
    with running_fake_anthropic() as fake:
        yield fake


@pytest.fixture
def fake(server: FakeAnthropic) -> FakeAnthropic:
    server.reset()
    return server


def tool_results(fake: FakeAnthropic) -> list[dict]:
    """tool_result blocks of the last user message of each request that ends with one."""
    return [block for request in fake.messages_requests() if ends_with_tool_result(request)
            for block in request.json()["messages"][-1]["content"] if block["type"] == "tool_result"]


def test_answer_api_key_and_custom_headers_reach_the_upstream(fake: FakeAnthropic, tmp_path: Path) -> None:
    result = run_claude("Say hello", base_url=fake.url, api_key=API_KEY, cwd=tmp_path,
                        custom_headers="x-proxy-key: sk-ccp-test\nx-team: platform")

    assert result.returncode == 0, result.stderr
    assert result.result == DEFAULT_TEXT
    assert result.json["usage"]["input_tokens"] == 25
    assert result.json["usage"]["cache_read_input_tokens"] == 3400
    [turn] = fake.messages_requests()
    assert turn.query == "beta=true"
    assert turn.header("x-api-key") == API_KEY
    assert turn.header("authorization") is None
    assert turn.header("x-proxy-key") == "sk-ccp-test"
    assert turn.header("x-team") == "platform"
    assert turn.json()["stream"] is True
    assert has_tools(turn)


def test_auth_token_is_sent_as_bearer(fake: FakeAnthropic, tmp_path: Path) -> None:
    result = run_claude("Say hello", base_url=fake.url, auth_token="sk-ccp-bearer-token", cwd=tmp_path)

    assert result.result == DEFAULT_TEXT, result.stdout + result.stderr
    [turn] = fake.messages_requests()
    assert turn.header("authorization") == "Bearer sk-ccp-bearer-token"
    assert turn.header("x-api-key") is None


def test_bash_tool_round_trip(fake: FakeAnthropic, tmp_path: Path) -> None:
    fake.enqueue(tool_use_reply("Bash", {"command": "echo hi", "description": "Print hi"}), when=has_tools)
    fake.enqueue(text_reply("The command printed hi."), when=ends_with_tool_result)

    result = run_claude("Run echo hi", base_url=fake.url, api_key=API_KEY, cwd=tmp_path,
                        extra_args=["--allowedTools", "Bash(echo:*)", "--max-turns", "3"])

    assert result.result == "The command printed hi.", result.stdout + result.stderr
    assert result.json["num_turns"] == 2
    [tool_result] = tool_results(fake)
    assert tool_result["content"] == "hi" and tool_result["is_error"] is False
    assert fake.pending == []


def test_read_tool_round_trip_and_unapproved_write_is_denied(fake: FakeAnthropic, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("the secret word is pineapple\n")
    fake.enqueue(tool_use_reply("Read", {"file_path": str(tmp_path / "notes.txt")}),
                 tool_use_reply("Bash", {"command": "touch made.txt", "description": "Create a file"}),
                 text_reply("pineapple"), when=has_tools)

    result = run_claude("What is the secret word?", base_url=fake.url, api_key=API_KEY, cwd=tmp_path,
                        extra_args=["--max-turns", "4"])

    assert result.result == "pineapple", result.stdout + result.stderr
    read, touch = tool_results(fake)
    assert "pineapple" in json.dumps(read["content"])
    assert touch["is_error"] is True  # no permission flags: a write needs approval, -p denies it
    assert not (tmp_path / "made.txt").exists()
    assert [d["tool_name"] for d in result.json["permission_denials"]] == ["Bash"]


def test_repeated_overload_surfaces_as_an_error_result(fake: FakeAnthropic, tmp_path: Path) -> None:
    fake.enqueue(*[overloaded_reply()] * 2)

    result = run_claude("Say hello", base_url=fake.url, api_key=API_KEY, cwd=tmp_path,
                        extra_env={"CLAUDE_CODE_MAX_RETRIES": "1"})

    assert result.returncode == 1
    assert result.json["is_error"] is True
    assert result.json["api_error_status"] == 529
    assert len(fake.messages_requests()) == 2  # the first try and one retry


@pytest.mark.skipif(bool(os.environ.get(CLAUDE_BIN_ENV)),
                    reason="the fixture records the pinned CLI; another version (CLAUDE_CODE_BIN) sends other headers")
def test_fixture_matches_what_the_pinned_cli_sends(fake: FakeAnthropic, tmp_path: Path) -> None:
    pinned = json.loads((E2E_DIR / "package.json").read_text())["dependencies"]["@anthropic-ai/claude-code"]
    fixture_body = json.loads((FIXTURES_DIR / "claude_code_request.json").read_bytes())
    fixture_meta = json.loads((FIXTURES_DIR / "claude_code_request_headers.json").read_text())
    fixture_headers = dict(fixture_meta["headers"])

    run_claude("Say hello", base_url=fake.url, api_key=API_KEY, cwd=tmp_path)

    [turn] = fake.messages_requests()
    body = turn.json()
    assert f"claude-cli/{pinned} " in fixture_headers["user-agent"], "re-run: python -m tests.e2e.claude_cli"
    assert turn.header("user-agent") == fixture_headers["user-agent"]
    assert turn.header("anthropic-beta") == fixture_headers["anthropic-beta"]
    assert list(body) == list(fixture_body)
    assert {t["name"] for t in body["tools"]} == {t["name"] for t in fixture_body["tools"]}
    assert (turn.path, turn.query) == (fixture_meta["path"], fixture_meta["query"])
    assert "x-api-key" in fixture_headers and fixture_headers["x-api-key"] == "<redacted>"
