"""The Claude Code snippets the dashboard and ``keys create`` print (app/admin/snippets.py), run
as they are by the real CLI: a ``bedrock_only`` key works with its placeholder credential and
nothing else (Bedrock answers; Anthropic is never asked), and without any credential Claude Code
refuses to start, which is why the placeholder is there."""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.admin.snippets import claude_code_snippets
from tests.conftest import RunningProxy, make_settings, start_proxy
from tests.e2e.claude_cli import E2E_MARKS, run_claude
from tests.fakes.anthropic_server import FakeAnthropic
from tests.fakes.bedrock_server import FakeBedrock, stream_text

pytestmark = E2E_MARKS


@pytest.fixture(scope="module")
def running(fakes: tuple[FakeAnthropic, FakeBedrock]) -> Iterator[RunningProxy]:
    yield from start_proxy(make_settings(fakes[0].url, bedrock_endpoint_url=fakes[1].url,
                                         default_fallback_policy="anthropic_first"))


def snippet_env(snippet: str) -> dict[str, str]:
    """``export NAME=VALUE  # comment`` lines -> ``{NAME: VALUE}``, as a shell would read them."""
    env = {}
    for line in snippet.splitlines():
        words = shlex.split(line, comments=True)
        if words and words[0] == "export":
            name, _, value = words[1].partition("=")
            env[name] = value
    return env


@pytest.mark.parametrize("form", ["header", "path"])
def test_bedrock_only_snippet_runs_claude_code_as_printed(running: RunningProxy, fakes: tuple[FakeAnthropic, FakeBedrock],
                                                          tmp_path: Path, form: str) -> None:
    anthropic, bedrock = fakes
    anthropic.reset()
    bedrock.reset()
    key = running.new_key(name=f"snippet-{form}", fallback_policy="bedrock_only")["key"]
    snippets = claude_code_snippets(running.url, key, "bedrock_only")
    env = snippet_env(snippets.header if form == "header" else snippets.path)
    assert set(env) <= {"ANTHROPIC_BASE_URL", "ANTHROPIC_CUSTOM_HEADERS", "ANTHROPIC_AUTH_TOKEN"}
    bedrock.enqueue(stream_text("Served by Bedrock."))

    result = run_claude("Say hello", base_url=env["ANTHROPIC_BASE_URL"], auth_token=env["ANTHROPIC_AUTH_TOKEN"],
                        custom_headers=env.get("ANTHROPIC_CUSTOM_HEADERS"), cwd=tmp_path,
                        extra_env={"CLAUDE_CODE_MAX_RETRIES": "0"}, timeout_s=90)

    assert result.returncode == 0 and result.result == "Served by Bedrock.", result.stdout[-2000:] + result.stderr[-2000:]
    assert anthropic.requests == []  # the placeholder credential went nowhere


def test_without_any_credential_claude_code_does_not_start(running: RunningProxy, tmp_path: Path) -> None:
    key = running.new_key(name="no-credential", fallback_policy="bedrock_only")["key"]
    result = run_claude("Say hello", base_url=running.url, custom_headers=f"x-proxy-key: {key}", cwd=tmp_path,
                        timeout_s=60)
    assert result.returncode != 0
    assert "Not logged in" in result.stdout + result.stderr
