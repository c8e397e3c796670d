"""When Anthropic cannot be reached and the Bedrock fallback fails too, the client's 502 says both."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import CLIENT_API_KEY, RunningProxy, make_settings, start_proxy
from tests.fakes.bedrock_server import FakeBedrock, http_error

HELLO = {"model": "claude-sonnet-4-6", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def unreachable_anthropic_proxy(fake_bedrock: FakeBedrock) -> Iterator[RunningProxy]:
    # Anthropic on a closed loopback port: every request is a connect error, which falls back.
    yield from start_proxy(make_settings("http://127.0.0.1:9", bedrock_endpoint_url=fake_bedrock.url,
                                         default_fallback_policy="anthropic_first", bedrock_read_timeout_s=10.0),
                           in_process=True)


def test_502_names_the_failed_bedrock_fallback(unreachable_anthropic_proxy: RunningProxy,
                                               fake_bedrock: FakeBedrock) -> None:
    fake_bedrock.enqueue(http_error(500, "InternalServerException", "Bedrock is having a bad day"))
    response = unreachable_anthropic_proxy.http.post("/v1/messages", json=HELLO, timeout=30,
                          headers={"x-proxy-key": unreachable_anthropic_proxy.key, "x-api-key": CLIENT_API_KEY})
    assert response.status_code == 502
    error = response.json()["error"]
    assert error["type"] == "api_error"
    assert error["message"].startswith("could not reach Anthropic")
    assert "the Bedrock fallback failed too" in error["message"]
