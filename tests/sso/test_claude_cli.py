"""The real Claude Code CLI with a key a developer made on ``/me``, configured only by the
``~/.claude/settings.json`` block the page shows (the header comes from that file, not from the
environment)."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import httpx
import pytest

from tests.conftest import CLIENT_API_KEY
from tests.e2e.claude_cli import npm_available, run_claude
from tests.sso.conftest import SsoProxy
from tests.sso.flow import csrf_of, sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(not npm_available(), reason="needs node and npm")]
SETTINGS = re.compile(r'<pre id="setup-settings"[^>]*>([^<]+)</pre>')


def test_claude_code_works_with_the_settings_json_from_me(sso_proxy: SsoProxy, tmp_path: Path) -> None:
    with httpx.Client(base_url=sso_proxy.url, timeout=30) as client:
        page = sign_in(client, "alice", "/me")
        for key_id in re.findall(r'action="/me/keys/(ak_[0-9a-f]+)/revoke"', page.text):
            client.post(f"/me/keys/{key_id}/revoke", data={"csrf_token": csrf_of(page.text)})
        created = client.post("/me/keys", data={"csrf_token": csrf_of(page.text), "name": "claude-cli"})
    settings = json.loads(html.unescape(SETTINGS.search(created.text).group(1)))
    home = tmp_path / "home"
    (home / ".claude").mkdir(parents=True)
    (home / ".claude" / "settings.json").write_text(json.dumps(settings))
    before = len(sso_proxy.fake.messages_requests())
    result = run_claude("Say hello", base_url=settings["env"]["ANTHROPIC_BASE_URL"], api_key=CLIENT_API_KEY,
                        cwd=tmp_path, home=home)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.json is not None and result.json.get("is_error") is False
    assert len(sso_proxy.fake.messages_requests()) > before
