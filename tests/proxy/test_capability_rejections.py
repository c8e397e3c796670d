"""A capability Bedrock refuses reaches the client as Claude Code's ``capability_rejected: <class>``
token (the whole ``error.message`` of a 400), so Claude Code drops the capability and goes on.
Through the official SDK, the real app and the fake Bedrock answering ValidationExceptions."""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import pytest

from tests.conftest import CLIENT_API_KEY, make_settings, start_proxy
from tests.fakes.bedrock_server import FakeBedrock, http_error
from tests.support.constants import MODEL

HELLO = {"model": MODEL, "max_tokens": 2048, "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def client(fake_bedrock: FakeBedrock) -> Iterator[anthropic.Anthropic]:
    for proxy in start_proxy(make_settings("http://127.0.0.1:9", bedrock_endpoint_url=fake_bedrock.url,
                                           default_fallback_policy="bedrock_only"), in_process=True):
        yield anthropic.Anthropic(api_key=CLIENT_API_KEY, base_url=proxy.url, http_client=proxy.client(), max_retries=0,
                                  default_headers={"x-proxy-key": proxy.key})


@pytest.mark.parametrize(("bedrock_message", "token"), [
    ("adaptive thinking is not supported on this model", "capability_rejected: thinking_type:adaptive"),
    ("thinking.type: enabled is not supported for this model. Use thinking.type: adaptive",
     "capability_rejected: thinking_type:enabled"),
    ("messages.2.content.0.text.cache_control: Extra inputs are not permitted",
     "capability_rejected: cache_control_field"),
    ("Input is too long for requested model.", "capability_rejected: prompt_too_long"),
])
def test_refused_capability_is_the_token(client: anthropic.Anthropic, fake_bedrock: FakeBedrock,
                                         bedrock_message: str, token: str) -> None:
    fake_bedrock.enqueue(http_error(400, "ValidationException", bedrock_message))
    with pytest.raises(anthropic.BadRequestError) as info:
        client.messages.create(**HELLO, thinking={"type": "enabled", "budget_tokens": 1024})
    assert info.value.body == {"type": "error", "error": {"type": "invalid_request_error", "message": token}}
    assert info.value.response.headers["x-should-retry"] == "false"


def test_refused_beta_names_the_value_the_client_sent(client: anthropic.Anthropic, fake_bedrock: FakeBedrock) -> None:
    beta = "interleaved-thinking-2025-05-14"
    fake_bedrock.enqueue(http_error(400, "ValidationException", f"invalid beta flag: {beta}"))
    with pytest.raises(anthropic.BadRequestError) as info:
        client.messages.create(**HELLO, extra_headers={"anthropic-beta": f"claude-code-20250219,{beta}"})
    assert info.value.body["error"]["message"] == f"capability_rejected: beta_header:{beta}"


def test_streamed_request_gets_the_token_before_the_first_byte(client: anthropic.Anthropic,
                                                               fake_bedrock: FakeBedrock) -> None:
    fake_bedrock.enqueue(http_error(400, "ValidationException", "This model does not support the effort parameter."))
    with pytest.raises(anthropic.BadRequestError) as info, client.messages.stream(**HELLO) as stream:
        stream.get_final_message()
    assert info.value.body["error"]["message"] == "capability_rejected: effort_unsupported"


def test_an_unclassified_refusal_keeps_bedrocks_words(client: anthropic.Anthropic, fake_bedrock: FakeBedrock) -> None:
    fake_bedrock.enqueue(http_error(400, "ValidationException", "max_tokens: must be greater than 0"))
    with pytest.raises(anthropic.BadRequestError) as info:
        client.messages.create(**HELLO)
    assert info.value.body["error"]["message"] == "Bedrock: max_tokens: must be greater than 0"
