"""BedrockRuntime.invoke_model / invoke_model_with_response_stream: the real aiobotocore client
against the fake Bedrock's invoke routes (real event-stream framing) over loopback."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from app.bedrock.clients import BedrockClients
from app.bedrock.runtime import BedrockRuntime
from app.errors import ApiError, InvalidRequest, PermissionDenied, RateLimited, UpstreamUnavailable
from tests.bedrock.test_runtime import aws_env  # noqa: F401 - the autouse fixture: static test credentials
from tests.fakes.bedrock_server import (METRICS_KEY, NATIVE_MODEL, FakeBedrock, converse_tool_use,
                                        corrupt_mid_stream, exception_mid_stream, http_error,
                                        running_fake_bedrock, stream_text)

MODEL = "us.anthropic.claude-opus-4-5-20251101-v1:0"
BODY = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}
BODY_BYTES = json.dumps(BODY).encode()


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeBedrock]:
    with running_fake_bedrock() as running:
        yield running


@pytest.fixture
async def runtime(fake: FakeBedrock) -> AsyncIterator[BedrockRuntime]:
    fake.reset()
    runtime = BedrockRuntime(BedrockClients("us-east-1", endpoint_url=fake.url, connect_timeout_s=1.0,
                                            read_timeout_s=5.0))
    yield runtime
    await runtime.aclose()


async def collect(runtime: BedrockRuntime, **kw: Any) -> list[dict[str, Any]]:
    return [e async for e in runtime.invoke_model_with_response_stream(MODEL, BODY_BYTES, **kw)]


async def test_invoke_model_sends_the_body_and_returns_the_native_message(runtime: BedrockRuntime,
                                                                          fake: FakeBedrock) -> None:
    fake.enqueue(converse_tool_use("Bash", {"command": "ls"}, tool_use_id="toolu_1", text="Listing."))
    message = await runtime.invoke_model(MODEL, BODY_BYTES)
    assert message["model"] == NATIVE_MODEL and message["stop_reason"] == "tool_use"
    assert message["content"] == [{"type": "text", "text": "Listing."},
                                  {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "ls"}}]
    (call,) = fake.requests
    assert call.operation == "InvokeModel" and call.model_id == MODEL
    assert call.raw_path == "/model/us.anthropic.claude-opus-4-5-20251101-v1%3A0/invoke"
    assert call.body == BODY_BYTES  # the payload, byte for byte
    assert call.header("content-type") == "application/json" and call.header("accept") == "application/json"


async def test_invoke_stream_yields_chunks_of_native_events(runtime: BedrockRuntime, fake: FakeBedrock) -> None:
    fake.enqueue(stream_text("abcdef", chunk=3))
    events = await collect(runtime)
    assert all(set(e) == {"chunk"} and isinstance(e["chunk"]["bytes"], bytes) for e in events)
    native = [json.loads(e["chunk"]["bytes"]) for e in events]
    assert [e["type"] for e in native] == ["message_start", "content_block_start", "content_block_delta",
                                           "content_block_delta", "content_block_stop", "message_delta",
                                           "message_stop"]
    assert METRICS_KEY in native[-1]
    assert fake.requests[0].operation == "InvokeModelWithResponseStream"
    assert fake.requests[0].raw_path.endswith("/invoke-with-response-stream")


def test_the_fake_frames_chunks_as_the_service_does() -> None:
    """PayloadPart on the wire: ``:event-type chunk``, JSON payload ``{"bytes": "<base64>"}``."""
    from botocore.eventstream import EventStreamBuffer

    from tests.fakes.eventstream import encode_event

    buffer = EventStreamBuffer()
    buffer.add_data(encode_event("chunk", {"bytes": b'{"type":"ping"}'}))
    (message,) = list(buffer)
    assert message.headers[":event-type"] == "chunk" and message.headers[":message-type"] == "event"
    assert base64.b64decode(json.loads(message.payload)["bytes"]) == b'{"type":"ping"}'


@pytest.mark.parametrize(("status", "code", "expected"), [
    (429, "ThrottlingException", RateLimited), (400, "ValidationException", InvalidRequest),
    (403, "AccessDeniedException", PermissionDenied), (500, "InternalServerException", ApiError)])
async def test_invoke_errors_are_mapped_like_converse(runtime: BedrockRuntime, fake: FakeBedrock, status: int,
                                                      code: str, expected: type[Exception]) -> None:
    fake.enqueue(http_error(status, code, "nope"), http_error(status, code, "nope"))
    with pytest.raises(expected):
        await runtime.invoke_model(MODEL, BODY_BYTES)
    with pytest.raises(expected):
        await collect(runtime)


async def test_exception_frame_mid_invoke_stream_is_mapped(runtime: BedrockRuntime, fake: FakeBedrock) -> None:
    fake.enqueue(exception_mid_stream(2, "ThrottlingException", "slow down"))
    received = []
    with pytest.raises(RateLimited):
        async for event in runtime.invoke_model_with_response_stream(MODEL, BODY_BYTES):
            received.append(event)
    assert len(received) == 2


async def test_corrupt_invoke_frame_is_a_malformed_response(runtime: BedrockRuntime, fake: FakeBedrock) -> None:
    fake.enqueue(corrupt_mid_stream(1, "crc"))
    with pytest.raises(UpstreamUnavailable, match="malformed"):
        await collect(runtime)


async def test_invoke_with_a_bearer_token(fake: FakeBedrock) -> None:
    fake.reset()
    fake.bearer_token = "ABSKdGVzdA=="
    runtime = BedrockRuntime(BedrockClients("us-east-1", endpoint_url=fake.url, read_timeout_s=5.0))
    try:
        assert (await runtime.invoke_model(MODEL, BODY_BYTES, bearer_token="ABSKdGVzdA=="))["type"] == "message"
        assert len(await collect(runtime, bearer_token="ABSKdGVzdA==")) > 3
        assert {r.header("authorization") for r in fake.requests} == {"Bearer ABSKdGVzdA=="}
        with pytest.raises(PermissionDenied):
            await runtime.invoke_model(MODEL, BODY_BYTES)
    finally:
        fake.bearer_token = None
        await runtime.aclose()
