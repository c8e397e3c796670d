"""FakeAnthropic, checked with the official ``anthropic`` SDK (max_retries=0) and raw httpx."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import anthropic
import httpx
import pytest

from tests.fakes.anthropic_server import (
    DEFAULT_TEXT,
    FakeAnthropic,
    ends_with_tool_result,
    error_reply,
    has_tools,
    model_contains,
    overloaded_reply,
    rate_limit_reply,
    running_fake_anthropic,
    text_reply,
    thinking_reply,
    tool_use_reply,
)

MESSAGES = [{"role": "user", "content": "hi"}]
TOOLS = [{"name": "Bash", "description": "Run a command",
          "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}}}]


@pytest.fixture(scope="module")
def server() -> Iterator[FakeAnthropic]:
    with running_fake_anthropic() as fake:
        yield fake


@pytest.fixture
def fake(server: FakeAnthropic) -> FakeAnthropic:
    server.reset()
    return server


@pytest.fixture
def client(fake: FakeAnthropic) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=fake.url, api_key="sk-ant-test", max_retries=0, timeout=10) as sdk:
        yield sdk


def sse_events(raw: str) -> list[tuple[str, dict]]:
    """(event name, data) pairs from an SSE body, checking each event's two-line framing."""
    events = []
    for frame in raw.strip("\n").split("\n\n"):
        event_line, data_line = frame.split("\n")
        assert event_line.startswith("event: ") and data_line.startswith("data: ")
        events.append((event_line.removeprefix("event: "), json.loads(data_line.removeprefix("data: "))))
    return events


def test_create_returns_the_default_text_with_usage(client: anthropic.Anthropic) -> None:
    message = client.messages.create(model="claude-opus-5-5", max_tokens=64, messages=MESSAGES)

    assert message.content[0].text == DEFAULT_TEXT
    assert message.model == "claude-opus-5-5"
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (25, 12)
    assert (message.usage.cache_creation_input_tokens, message.usage.cache_read_input_tokens) == (1200, 3400)
    assert message.usage.cache_creation.ephemeral_1h_input_tokens == 200


def test_records_raw_body_query_and_headers_as_received(fake: FakeAnthropic) -> None:
    body = b'{"model": "m",  "max_tokens": 5, "messages": [], "x": "\\u00e9"}'  # odd spacing kept
    headers = [("X-Api-Key", "sk-1"), ("X-Dup", "a"), ("X-Dup", "b"), ("Content-Type", "application/json")]

    httpx.post(f"{fake.url}/v1/messages?beta=true", content=body, headers=headers)

    [recorded] = fake.requests
    assert (recorded.method, recorded.path, recorded.query) == ("POST", "/v1/messages", "beta=true")
    assert recorded.body == body
    assert recorded.header("x-api-key") == "sk-1"
    assert [v for k, v in recorded.headers if k == "x-dup"] == ["a", "b"]
    assert fake.last_messages_body()["x"] == "é"


def test_stream_final_message_collects_text_and_usage(client: anthropic.Anthropic) -> None:
    with client.messages.stream(model="m", max_tokens=64, messages=MESSAGES) as stream:
        text = "".join(stream.text_stream)
        message = stream.get_final_message()

    assert text == DEFAULT_TEXT
    assert message.usage.output_tokens == 12
    assert message.usage.cache_read_input_tokens == 3400


def test_stream_wire_format_matches_anthropic(fake: FakeAnthropic) -> None:
    fake.enqueue(text_reply("one two three four", message_delta_usage="output_tokens"))

    response = httpx.post(f"{fake.url}/v1/messages", json={"model": "m", "stream": True, "messages": MESSAGES})

    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response.text)
    names = [name for name, _ in events]
    assert names[:3] == ["message_start", "ping", "content_block_start"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert names.count("content_block_delta") >= 2
    assert all(data["type"] == name for name, data in events)
    assert events[0][1]["message"]["usage"]["output_tokens"] == 1
    assert events[-2][1]["usage"] == {"output_tokens": 12}
    assert "".join(d["delta"]["text"] for n, d in events if n == "content_block_delta") == "one two three four"


def test_thinking_block_streams_with_its_signature(fake: FakeAnthropic, client: anthropic.Anthropic) -> None:
    fake.enqueue(thinking_reply("Let me think step by step about it.", "Answer"))

    with client.messages.stream(model="m", max_tokens=64, messages=MESSAGES) as stream:
        message = stream.get_final_message()

    thinking, text = message.content
    assert thinking.type == "thinking" and thinking.thinking == "Let me think step by step about it."
    assert thinking.signature
    assert text.text == "Answer"


def test_tool_use_reply_as_json_and_stream(fake: FakeAnthropic, client: anthropic.Anthropic) -> None:
    fake.enqueue(tool_use_reply("Bash", {"command": "echo hi"}, text="Running it"),
                 tool_use_reply("Bash", {"command": "echo hi"}, tool_use_id="toolu_fixed"))

    created = client.messages.create(model="m", max_tokens=64, messages=MESSAGES, tools=TOOLS)
    with client.messages.stream(model="m", max_tokens=64, messages=MESSAGES, tools=TOOLS) as stream:
        streamed = stream.get_final_message()

    assert created.stop_reason == streamed.stop_reason == "tool_use"
    assert [b.type for b in created.content] == ["text", "tool_use"]
    assert streamed.content[0].id == "toolu_fixed"
    assert streamed.content[0].input == {"command": "echo hi"}


def test_count_tokens(client: anthropic.Anthropic, fake: FakeAnthropic) -> None:
    fake.count_tokens_input_tokens = 321
    try:
        assert client.messages.count_tokens(model="m", messages=MESSAGES).input_tokens == 321
    finally:
        fake.count_tokens_input_tokens = None
    assert fake.requests[-1].path == "/v1/messages/count_tokens"
    assert fake.messages_requests() == []


@pytest.mark.parametrize(("reply", "exception"), [
    (error_reply(400, "prompt is too long"), anthropic.BadRequestError),
    (error_reply(401), anthropic.AuthenticationError),
    (rate_limit_reply(), anthropic.RateLimitError),
    (error_reply(500), anthropic.InternalServerError),
    (overloaded_reply(), anthropic.OverloadedError),
])
def test_errors_raise_the_sdk_exception(fake: FakeAnthropic, client: anthropic.Anthropic,
                                        reply, exception) -> None:
    fake.enqueue(reply)

    with pytest.raises(exception) as raised:
        client.messages.create(model="m", max_tokens=64, messages=MESSAGES)

    assert raised.value.body["type"] == "error"
    assert raised.value.body["error"]["type"] == reply.json_body["error"]["type"]
    assert raised.value.response.headers["request-id"] == raised.value.body["request_id"]


def test_rate_limit_carries_retry_after_and_ratelimit_headers(fake: FakeAnthropic) -> None:
    fake.enqueue(rate_limit_reply(retry_after_s=7), when=lambda r: True)

    response = httpx.post(f"{fake.url}/v1/messages", json={"model": "m", "stream": True, "messages": MESSAGES})

    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"
    assert response.headers["anthropic-ratelimit-requests-remaining"] == "0"
    assert response.json()["error"]["type"] == "rate_limit_error"  # JSON even for a stream request


def test_custom_response_headers_pass_through(fake: FakeAnthropic, client: anthropic.Anthropic) -> None:
    fake.enqueue(text_reply(headers={"request-id": "req_custom", "anthropic-ratelimit-tokens-remaining": "99"}))

    raw = client.messages.with_raw_response.create(model="m", max_tokens=64, messages=MESSAGES)

    assert raw.headers["request-id"] == "req_custom"
    assert raw.headers["anthropic-ratelimit-tokens-remaining"] == "99"


def test_predicates_pick_which_request_gets_a_scripted_reply(fake: FakeAnthropic, client: anthropic.Anthropic) -> None:
    fake.enqueue(tool_use_reply("Bash", {"command": "echo hi"}), when=has_tools)
    fake.enqueue(text_reply("final"), when=ends_with_tool_result)
    fake.enqueue(text_reply("haiku title"), when=model_contains("haiku"))

    side_call = client.messages.create(model="claude-sonnet", max_tokens=8, messages=MESSAGES)
    turn = client.messages.create(model="claude-sonnet", max_tokens=8, messages=MESSAGES, tools=TOOLS)
    follow_up = [*MESSAGES, {"role": "assistant", "content": [b.model_dump() for b in turn.content]},
                 {"role": "user", "content": [{"type": "tool_result", "tool_use_id": turn.content[0].id,
                                               "content": "hi"}]}]
    final = client.messages.create(model="claude-sonnet", max_tokens=8, messages=follow_up, tools=TOOLS)
    title = client.messages.create(model="claude-haiku-4-5", max_tokens=8, messages=MESSAGES)

    assert side_call.content[0].text == DEFAULT_TEXT  # no tools: not matched, default reply
    assert turn.stop_reason == "tool_use"
    assert final.content[0].text == "final"
    assert title.content[0].text == "haiku title"
    assert fake.pending == []


def test_default_reply_can_be_a_function(fake: FakeAnthropic, client: anthropic.Anthropic) -> None:
    fake.default = lambda request: text_reply(f"you sent {len(request.json()['messages'])} message(s)")
    try:
        message = client.messages.create(model="m", max_tokens=8, messages=MESSAGES)
    finally:
        fake.default = text_reply()
    assert message.content[0].text == "you sent 1 message(s)"


def test_stall_before_first_byte_trips_client_timeout(fake: FakeAnthropic) -> None:
    fake.enqueue(text_reply(stall_s=10))
    started = time.monotonic()

    with anthropic.Anthropic(base_url=fake.url, api_key="k", max_retries=0, timeout=0.5) as sdk:
        with pytest.raises(anthropic.APITimeoutError):
            sdk.messages.create(model="m", max_tokens=8, messages=MESSAGES)

    assert time.monotonic() - started < 5
    assert len(fake.messages_requests()) == 1


def test_chunk_delay_paces_the_stream(fake: FakeAnthropic) -> None:
    fake.enqueue(text_reply(chunk_delay_s=0.05))
    started = time.monotonic()

    response = httpx.post(f"{fake.url}/v1/messages", json={"model": "m", "stream": True, "messages": MESSAGES})

    assert len(sse_events(response.text)) == 9
    assert time.monotonic() - started >= 0.05 * 8


def test_stream_dies_midway(fake: FakeAnthropic) -> None:
    fake.enqueue(text_reply(abort_after_events=3))
    received = b""

    with pytest.raises(httpx.RemoteProtocolError):
        with httpx.stream("POST", f"{fake.url}/v1/messages",
                          json={"model": "m", "stream": True, "messages": MESSAGES}) as response:
            assert response.status_code == 200
            for chunk in response.iter_raw():
                received += chunk

    assert [name for name, _ in sse_events(received.decode())] == ["message_start", "ping", "content_block_start"]


def test_stream_error_event_after_content(fake: FakeAnthropic, client: anthropic.Anthropic) -> None:
    fake.enqueue(text_reply(stream_error={"type": "overloaded_error", "message": "Overloaded"}))

    with pytest.raises(anthropic.APIStatusError, match="Overloaded"):
        with client.messages.stream(model="m", max_tokens=8, messages=MESSAGES) as stream:
            stream.get_final_message()


def test_api_key_is_enforced_when_set() -> None:
    with running_fake_anthropic(api_key="sk-right") as fake:
        good_key = anthropic.Anthropic(base_url=fake.url, api_key="sk-right", max_retries=0)
        bearer = anthropic.Anthropic(base_url=fake.url, auth_token="sk-right", max_retries=0)
        wrong = anthropic.Anthropic(base_url=fake.url, api_key="sk-wrong", max_retries=0)

        assert good_key.messages.create(model="m", max_tokens=8, messages=MESSAGES).content
        assert bearer.messages.create(model="m", max_tokens=8, messages=MESSAGES).content
        with pytest.raises(anthropic.AuthenticationError):
            wrong.messages.create(model="m", max_tokens=8, messages=MESSAGES)


def test_hello_probe_and_unknown_paths(fake: FakeAnthropic) -> None:
    assert httpx.head(f"{fake.url}/api/hello").status_code == 200
    assert httpx.get(f"{fake.url}/api/hello").status_code == 200
    missing = httpx.get(f"{fake.url}/v1/models?limit=5")

    assert missing.status_code == 404
    assert missing.json()["error"]["type"] == "not_found_error"
    assert [(r.method, r.path, r.query) for r in fake.requests] == [
        ("HEAD", "/api/hello", ""), ("GET", "/api/hello", ""), ("GET", "/v1/models", "limit=5")]


def test_invalid_json_body_is_a_400(fake: FakeAnthropic) -> None:
    response = httpx.post(f"{fake.url}/v1/messages", content=b"{not json")

    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert fake.requests[0].body == b"{not json"


def test_reset_forgets_requests_and_script(fake: FakeAnthropic, client: anthropic.Anthropic) -> None:
    fake.enqueue(error_reply(500))
    client.messages.count_tokens(model="m", messages=MESSAGES)

    fake.reset()

    assert fake.requests == [] and fake.pending == []
