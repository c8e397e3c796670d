"""count_tokens on Bedrock counts tool definitions: with tools the proxy uses CountTokens'
``invokeModel`` form (the native Anthropic body; the ``converse`` form has no ``toolConfig``), and
keeps the over-estimate for real failures only. Official SDK -> real app -> fake Bedrock."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import pytest

from tests.conftest import CLIENT_API_KEY, RunningProxy, make_settings, start_proxy
from tests.fakes.bedrock_server import FakeBedrock, count_tokens_invoke_body, http_error, running_fake_bedrock
from tests.support.constants import MODEL

TOOLS = [
    {"name": "Bash", "description": "Run a shell command", "input_schema": {
        "type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]},
     "cache_control": {"type": "ephemeral"}},
    {"type": "web_search_20250305", "name": "web_search", "max_uses": 5},  # a server tool: not counted
]


@pytest.fixture
def fake_bedrock() -> Iterator[FakeBedrock]:
    with running_fake_bedrock(count_tokens_input_tokens=4321) as fake:
        yield fake


@pytest.fixture
def proxy_b(fake_bedrock: FakeBedrock) -> Iterator[RunningProxy]:
    yield from start_proxy(make_settings("http://127.0.0.1:9", bedrock_endpoint_url=fake_bedrock.url,
                                         default_fallback_policy="bedrock_only"), in_process=True)


def count(proxy: RunningProxy, **params: Any) -> Any:
    client = anthropic.Anthropic(api_key=CLIENT_API_KEY, base_url=proxy.url, http_client=proxy.client(), max_retries=0,
                                 default_headers={"x-proxy-key": proxy.key})
    return client.messages.with_raw_response.count_tokens(model=MODEL, **params)


def test_tools_are_counted_through_the_invoke_form(proxy_b: RunningProxy, fake_bedrock: FakeBedrock) -> None:
    response = count(proxy_b, tools=TOOLS, system="You are Claude Code.",
                     thinking={"type": "enabled", "budget_tokens": 4096},
                     messages=[{"role": "user", "content": "list files"},
                               {"role": "assistant", "content": [
                                   {"type": "tool_use", "id": "toolu.01/weird", "name": "Bash",
                                    "input": {"command": "ls"}}]},
                               {"role": "user", "content": [
                                   {"type": "tool_result", "tool_use_id": "toolu.01/weird", "content": "a b"}]}],
                     extra_headers={"anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14"})
    assert response.parse().input_tokens == 4321
    assert response.headers["x-proxy-token-count"] == "bedrock"
    (call,) = fake_bedrock.calls("CountTokens")
    assert "converse" not in call.json()["input"]
    body = count_tokens_invoke_body(call)
    assert body["anthropic_version"] == "bedrock-2023-05-31"
    assert "model" not in body and "stream" not in body
    assert [t["name"] for t in body["tools"]] == ["Bash"]
    assert body["tools"][0]["cache_control"] == {"type": "ephemeral"}
    assert body["system"] == "You are Claude Code."
    assert body["max_tokens"] > body["thinking"]["budget_tokens"]
    assert body["anthropic_beta"] == ["interleaved-thinking-2025-05-14"]
    tool_use = body["messages"][1]["content"][0]
    assert tool_use["id"] == body["messages"][2]["content"][0]["tool_use_id"]
    assert all(c.isalnum() or c in "_-" for c in tool_use["id"])


def test_without_tools_the_converse_form_is_kept(proxy_b: RunningProxy, fake_bedrock: FakeBedrock) -> None:
    response = count(proxy_b, messages=[{"role": "user", "content": "hi"}])
    assert response.parse().input_tokens == 4321
    (call,) = fake_bedrock.calls("CountTokens")
    assert call.json()["input"]["converse"]["messages"][0]["role"] == "user"


def test_a_real_failure_still_gets_the_labelled_estimate(proxy_b: RunningProxy, fake_bedrock: FakeBedrock) -> None:
    fake_bedrock.enqueue(http_error(400, "ValidationException", "The provided model doesn't support counting tokens."))
    text = "The quick brown fox jumps over the lazy dog. " * 200
    response = count(proxy_b, tools=TOOLS, messages=[{"role": "user", "content": text}])
    assert response.headers["x-proxy-token-count"] == "estimate"
    assert response.parse().input_tokens >= 2000
