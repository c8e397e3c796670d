"""The real Claude Code CLI through the proxy to a fake Anthropic: both ways of passing the access
key, both kinds of client credential. The upstream must get Claude Code's exact body bytes and its
credential, never the proxy key; usage must be recorded with the upstream's token counts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import BodyRecorder, RunningProxy, make_settings, start_proxy
from tests.e2e.claude_cli import E2E_MARKS, run_claude
from tests.fakes.anthropic_server import DEFAULT_TEXT, DEFAULT_USAGE, FakeAnthropic, running_fake_anthropic

pytestmark = E2E_MARKS
API_KEY = "sk-ant-api03-e2e-through-proxy-0123456789"
OAUTH_TOKEN = "sk-ant-oat01-e2e-subscription-token-0123"


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeAnthropic]:
    with running_fake_anthropic() as fake:
        yield fake


@pytest.fixture(scope="module")
def running(upstream: FakeAnthropic) -> Iterator[RunningProxy]:
    yield from start_proxy(make_settings(upstream.url))


@pytest.fixture
def fake(upstream: FakeAnthropic) -> FakeAnthropic:
    upstream.reset()
    return upstream


@pytest.mark.parametrize(("form", "credential"), [
    ("header", "api_key"), ("header", "auth_token"), ("path", "api_key"), ("path", "auth_token")])
def test_claude_code_through_proxy(running: RunningProxy, fake: FakeAnthropic, tmp_path: Path,
                                   form: str, credential: str) -> None:
    key = running.new_key(name=f"{form}-{credential}")
    if form == "header":
        base_url, custom_headers = running.url, f"x-proxy-key: {key['key']}"
    else:
        base_url, custom_headers = f"{running.url}/ak/{key['key']}", None
    creds = {"api_key": API_KEY} if credential == "api_key" else {"auth_token": OAUTH_TOKEN}

    result = run_claude("Say hello", base_url=base_url, custom_headers=custom_headers, cwd=tmp_path, **creds)

    assert result.returncode == 0, result.stderr[-2000:]
    assert result.result == DEFAULT_TEXT
    turns = fake.messages_requests()
    assert turns, "Claude Code's request never reached the upstream"
    for turn in turns:
        if credential == "api_key":
            assert turn.header("x-api-key") == API_KEY and turn.header("authorization") is None
        else:
            assert turn.header("authorization") == f"Bearer {OAUTH_TOKEN}" and turn.header("x-api-key") is None
        assert turn.header("x-proxy-key") is None
        assert all(key["key"] not in value for _, value in turn.headers)
        assert key["key"].encode() not in turn.body
        assert turn.path == "/v1/messages" and turn.query == "beta=true"
        assert turn.header("anthropic-beta") and turn.header("user-agent", ).startswith("claude-cli/")
    totals = running.wait_for_usage(lambda t: t["requests"] >= len(turns), access_key_id=key["id"])
    assert totals["requests"] == len(turns)
    for field in ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"):
        assert totals[field] == len(turns) * DEFAULT_USAGE[field], field


def test_body_bytes_identical_to_what_claude_code_sent(upstream: FakeAnthropic, tmp_path: Path) -> None:
    recorder = BodyRecorder(None)
    upstream.reset()
    for proxy in start_proxy(make_settings(upstream.url), recorder=recorder):
        result = run_claude("Say hello", base_url=proxy.url, custom_headers=f"x-proxy-key: {proxy.key}",
                            api_key=API_KEY, cwd=tmp_path)
        assert result.returncode == 0, result.stderr[-2000:]
    sent = [body for path, body in recorder.bodies if path == "/v1/messages"]
    received = [turn.body for turn in upstream.messages_requests()]
    assert sent and received == sent
