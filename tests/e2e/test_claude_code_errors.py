"""The real Claude Code CLI against the proxy's own refusals: a wrong proxy key must fail at once
(``x-should-retry: false`` on the 401: one request reaches the proxy, not Claude Code's ten retries
with backoff), with a message that says what to fix."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import BodyRecorder, RunningProxy, make_settings, start_proxy
from tests.e2e.claude_cli import E2E_MARKS, run_claude
from tests.fakes.anthropic_server import FakeAnthropic, running_fake_anthropic

pytestmark = E2E_MARKS
API_KEY = "sk-ant-api03-e2e-wrong-proxy-key-0123456789"
# Without x-should-retry: false Claude Code retries a 401 with backoff for about three minutes;
# with it, it gives up at once. The bound only stops a regression from hanging the suite.
FAIL_FAST_BOUND_S = 60


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeAnthropic]:
    with running_fake_anthropic() as fake:
        yield fake


class RequestRecorder(BodyRecorder):
    """Records every HTTP request's path as it arrives (a 401 is answered before the body is read)."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.bodies.append((scope["path"], b""))
        await self.app(scope, receive, send)


@pytest.fixture(scope="module")
def recorder() -> BodyRecorder:
    return RequestRecorder(None)


@pytest.fixture(scope="module")
def running(upstream: FakeAnthropic, recorder: BodyRecorder) -> Iterator[RunningProxy]:
    yield from start_proxy(make_settings(upstream.url), recorder=recorder)


@pytest.mark.parametrize(("form", "says"), [("header", "x-proxy-key header"), ("path", "/ak/<key>/")])
def test_wrong_proxy_key_fails_at_once_with_one_request(running: RunningProxy, upstream: FakeAnthropic,
                                                        recorder: BodyRecorder, tmp_path: Path,
                                                        form: str, says: str) -> None:
    wrong = "sk-ccp-" + "W" * 43
    if form == "header":
        base_url, custom_headers = running.url, f"x-proxy-key: {wrong}"
    else:
        base_url, custom_headers = f"{running.url}/ak/{wrong}", None
    recorder.bodies.clear()
    upstream.reset()
    try:
        result = run_claude("hi", base_url=base_url, custom_headers=custom_headers, api_key=API_KEY,
                            cwd=tmp_path, timeout_s=FAIL_FAST_BOUND_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"claude -p kept retrying the 401 for {FAIL_FAST_BOUND_S} s "
                    f"({sum(p.endswith('/v1/messages') for p, _ in recorder.bodies)} requests)")
    messages_calls = [path for path, _ in recorder.bodies if path.endswith("/v1/messages")]
    assert len(messages_calls) == 1, messages_calls
    assert result.returncode != 0 or (result.json or {}).get("is_error")
    shown = result.stdout + result.stderr
    assert "invalid proxy access key" in shown and says in shown
    assert upstream.messages_requests() == []
