"""The real Claude Code CLI against a spend cap: the first run spends past a 1-cent cap, the next
one is refused with 429 billing_error (x-should-retry: false) and Claude Code stops at once: one
attempt reaches the proxy, none reaches Anthropic, and the CLI reports the proxy's message."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import RunningProxy, make_settings, start_proxy
from tests.e2e.claude_cli import E2E_MARKS, run_claude
from tests.fakes.anthropic_server import FakeAnthropic, is_messages, running_fake_anthropic, text_reply

pytestmark = E2E_MARKS
API_KEY = "sk-ant-api03-e2e-spend-limit-0123456789"


@pytest.fixture
def fake() -> Iterator[FakeAnthropic]:
    with running_fake_anthropic() as upstream:
        yield upstream


@pytest.fixture
def running(fake: FakeAnthropic) -> Iterator[RunningProxy]:
    yield from start_proxy(make_settings(fake.url))


def test_claude_code_stops_at_its_spend_cap_without_retrying(running: RunningProxy, fake: FakeAnthropic,
                                                            tmp_path: Path) -> None:
    cap = running.admin.post("/v1/organizations/spend_limits", json={
        "scope": {"type": "user", "user_id": running.user_id}, "amount": "1", "period": "daily",
        "blocked_message": "Ask #platform-team to raise it."})
    assert cap.status_code == 200, cap.text
    # A costly first answer: 20,000 output tokens is well over a cent at any Claude price.
    fake.enqueue(text_reply("spent", usage={"input_tokens": 100, "output_tokens": 20_000}))
    headers = f"x-proxy-key: {running.key}"
    first = run_claude("Say hello", base_url=running.url, custom_headers=headers, api_key=API_KEY, cwd=tmp_path)
    assert first.returncode == 0 and first.result == "spent", first.stdout[-2000:]
    upstream_calls = len([r for r in fake.requests if is_messages(r)])

    started = time.monotonic()
    second = run_claude("Say hello again", base_url=running.url, custom_headers=headers, api_key=API_KEY,
                        cwd=tmp_path, timeout_s=60)
    elapsed_s = time.monotonic() - started
    assert second.returncode != 0 or (second.json or {}).get("is_error"), second.stdout[-2000:]
    output = second.stdout + second.stderr
    assert "spend limit reached" in output and "Ask #platform-team to raise it." in output
    assert len([r for r in fake.requests if is_messages(r)]) == upstream_calls  # nothing reached Anthropic
    refused = running.services.governance.enforcement.refused
    print(f"\nsecond run: {refused} refused attempt(s), exit {second.returncode}, {elapsed_s:.1f} s")
    assert refused == 1  # Claude Code did not retry the 429
