"""BedrockRuntime, the real aiobotocore client, against the fake Bedrock over loopback."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest
from botocore.exceptions import (
    ConnectionClosedError,
    EndpointConnectionError,
    ParamValidationError,
    ReadTimeoutError,
)

from app.bedrock import clients as client_module
from app.bedrock.clients import BedrockClients, token_key
from app.bedrock.runtime import BedrockRuntime
from app.bedrock.errors import map_bedrock_error
from app.errors import (
    ApiError,
    InvalidRequest,
    NotFound,
    Overloaded,
    PermissionDenied,
    ProxyError,
    RateLimited,
    UpstreamPoolExhausted,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from tests.fakes.bedrock_server import (
    FakeBedrock,
    Reply,
    converse_text,
    converse_tool_use,
    corrupt_mid_stream,
    disconnect_mid_stream,
    exception_mid_stream,
    http_error,
    message_reply,
    redacted_reasoning_block,
    running_fake_bedrock,
    stream_reasoning,
    stream_text,
    stream_tool_use,
    text_block,
)
from tests.support.constants import BEDROCK_MODEL_ID as MODEL

MESSAGES = [{"role": "user", "content": [{"text": "hi"}]}]
REQUEST: dict[str, Any] = {"modelId": MODEL, "messages": MESSAGES, "inferenceConfig": {"maxTokens": 64}}
READ_TIMEOUT_S = 0.3       # the default runtime: stalls fail fast
SLOW_READ_TIMEOUT_S = 5.0  # for tests whose pauses must not be mistaken for stalls


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeBedrock]:
    with running_fake_bedrock() as running:
        yield running


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """Static test credentials; no profile, config file, env bearer token or IMDS."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_BEARER_TOKEN_BEDROCK",
                 "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDTESTEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test-secret-access-key")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def make_runtime(**options: Any) -> BedrockRuntime:
    """A runtime over its own client pool (``BedrockClients`` options) in us-east-1."""
    return BedrockRuntime(BedrockClients("us-east-1", **options))


@pytest.fixture
async def runtime(fake: FakeBedrock) -> AsyncIterator[BedrockRuntime]:
    fake.reset()
    runtime = make_runtime(endpoint_url=fake.url, connect_timeout_s=1.0,
                             read_timeout_s=READ_TIMEOUT_S)
    yield runtime
    await runtime.aclose()


@pytest.fixture
async def slow_runtime(fake: FakeBedrock) -> AsyncIterator[BedrockRuntime]:
    """A runtime with a long read timeout, its default client already created."""
    fake.reset()
    runtime = make_runtime(endpoint_url=fake.url, read_timeout_s=SLOW_READ_TIMEOUT_S)
    await runtime.clients.client_for(None)
    yield runtime
    await runtime.aclose()


async def collect(runtime: BedrockRuntime, **kw: Any) -> list[dict[str, Any]]:
    return [event async for event in runtime.converse_stream(REQUEST, **kw)]


async def wait_until(predicate: Any, timeout_s: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not predicate() and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    return bool(predicate())


# --- calls -----------------------------------------------------------------------------------

async def test_converse_returns_botocores_response(runtime: BedrockRuntime, fake: FakeBedrock) -> None:
    fake.enqueue(converse_text("Hi there", usage={"inputTokens": 3, "outputTokens": 2, "totalTokens": 5}))
    response = await runtime.converse({**REQUEST, "system": [{"text": "be brief"}]})
    assert response["output"]["message"]["content"] == [{"text": "Hi there"}]
    assert response["stopReason"] == "end_turn"
    assert response["usage"] == {"inputTokens": 3, "outputTokens": 2, "totalTokens": 5}
    (call,) = fake.requests
    assert call.operation == "Converse" and call.model_id == MODEL
    assert call.raw_path == "/model/us.anthropic.claude-sonnet-4-20250514-v1%3A0/converse"
    assert call.json() == {"messages": MESSAGES, "inferenceConfig": {"maxTokens": 64}, "system": [{"text": "be brief"}]}


async def test_converse_tool_use(runtime: BedrockRuntime, fake: FakeBedrock) -> None:
    fake.enqueue(converse_tool_use("Bash", {"command": "ls"}, tool_use_id="tooluse_1"))
    response = await runtime.converse(REQUEST)
    assert response["output"]["message"]["content"] == [
        {"toolUse": {"toolUseId": "tooluse_1", "name": "Bash", "input": {"command": "ls"}}}]
    assert response["stopReason"] == "tool_use"


@pytest.mark.parametrize("reply", [
    stream_text("Hello from the stream", chunk=4),
    stream_tool_use("Bash", {"command": "echo hi"}, tool_use_id="tooluse_9", text="Running it"),
    stream_reasoning("Let me think about it", "sig-abc", then_text="Answer"),
    message_reply(redacted_reasoning_block(b"\x00\x01opaque"), text_block("ok")),
], ids=["text", "tool_use", "reasoning", "redacted_reasoning"])
async def test_converse_stream_yields_parsed_events(runtime: BedrockRuntime, fake: FakeBedrock, reply: Reply) -> None:
    fake.enqueue(reply)
    # botocore decodes base64 blobs back to bytes, so the events equal the scripted ones.
    assert await collect(runtime) == reply.stream_events()
    assert fake.requests[0].operation == "ConverseStream"


async def test_converse_stream_events_arrive_incrementally(slow_runtime: BedrockRuntime, fake: FakeBedrock) -> None:
    # A pause long enough to tell "streamed" from "buffered", well inside the read timeout.
    fake.enqueue(stream_text("abcdef", chunk=2, delays_s=(0.0, 0.0, 0.6)))
    started = time.monotonic()
    stream = slow_runtime.converse_stream(REQUEST)
    first = await anext(stream)
    second = await anext(stream)
    first_two_s = time.monotonic() - started
    rest = [event async for event in stream]
    assert first == {"messageStart": {"role": "assistant"}} and "contentBlockDelta" in second
    assert first_two_s < 0.4 and time.monotonic() - started >= 0.6
    assert rest[-1]["metadata"]["metrics"] == {"latencyMs": 321}


async def test_nothing_is_sent_before_the_first_anext(runtime: BedrockRuntime, fake: FakeBedrock) -> None:
    stream = runtime.converse_stream(REQUEST)
    await asyncio.sleep(0.05)
    assert fake.requests == []
    await stream.aclose()


async def test_count_tokens(runtime: BedrockRuntime, fake: FakeBedrock) -> None:
    fake.count_tokens_input_tokens = 1234
    try:
        converse_input = {"messages": MESSAGES, "system": [{"text": "sys"}]}
        assert await runtime.count_tokens(MODEL, converse_input) == 1234
    finally:
        fake.count_tokens_input_tokens = 42
    (call,) = fake.requests
    assert call.operation == "CountTokens" and call.model_id == MODEL
    assert call.json() == {"input": {"converse": converse_input}}


# --- errors ----------------------------------------------------------------------------------

HTTP_ERRORS = [
    (429, "ThrottlingException", RateLimited, 429),
    (400, "ServiceQuotaExceededException", RateLimited, 429),
    (400, "ValidationException", InvalidRequest, 400),
    (403, "AccessDeniedException", PermissionDenied, 403),
    (404, "ResourceNotFoundException", NotFound, 404),
    (408, "ModelTimeoutException", UpstreamTimeout, 504),
    (503, "ServiceUnavailableException", Overloaded, 529),
    (429, "ModelNotReadyException", Overloaded, 529),
    (500, "InternalServerException", ApiError, 500),
    (424, "ModelErrorException", ApiError, 500),
    (424, "ModelStreamErrorException", ApiError, 500),
    (418, "SomethingNewException", ApiError, 500),
]


@pytest.mark.parametrize("status, code, expected, expected_status", HTTP_ERRORS)
async def test_http_errors_are_mapped(runtime: BedrockRuntime, fake: FakeBedrock, status: int, code: str,
                                      expected: type[ProxyError], expected_status: int) -> None:
    fake.enqueue(http_error(status, code, f"{code} happened"))
    with pytest.raises(expected) as info:
        await runtime.converse(REQUEST)
    assert type(info.value) is expected and info.value.status_code == expected_status
    assert info.value.message.startswith(f"Bedrock: {code} happened")


@pytest.mark.parametrize("status, code, expected", [(429, "ThrottlingException", RateLimited),
                                                    (400, "ValidationException", InvalidRequest),
                                                    (503, "ServiceUnavailableException", Overloaded)])
async def test_http_errors_before_the_stream_raise_on_first_anext(
        runtime: BedrockRuntime, fake: FakeBedrock, status: int, code: str, expected: type[ProxyError]) -> None:
    fake.enqueue(http_error(status, code, "nope"))
    with pytest.raises(expected, match="Bedrock: nope"):
        await anext(runtime.converse_stream(REQUEST))


async def test_count_tokens_errors_are_mapped(runtime: BedrockRuntime, fake: FakeBedrock) -> None:
    fake.enqueue(http_error(403, "AccessDeniedException", "not allowed"))
    with pytest.raises(PermissionDenied, match="Bedrock: not allowed"):
        await runtime.count_tokens(MODEL, {"messages": MESSAGES})


@pytest.mark.parametrize("member, expected", [
    ("throttlingException", RateLimited),
    ("validationException", InvalidRequest),
    ("serviceUnavailableException", Overloaded),
    ("internalServerException", ApiError),
    ("modelStreamErrorException", ApiError),
])
async def test_exception_frames_mid_stream_are_mapped(runtime: BedrockRuntime, fake: FakeBedrock,
                                                      member: str, expected: type[ProxyError]) -> None:
    fake.enqueue(exception_mid_stream(2, member, "went wrong mid-stream"))
    received: list[dict[str, Any]] = []
    with pytest.raises(expected) as info:
        async for event in runtime.converse_stream(REQUEST):
            received.append(event)
    assert type(info.value) is expected and info.value.message == "Bedrock: went wrong mid-stream"
    assert len(received) == 2


@pytest.mark.parametrize("after_events", [0, 3])
@pytest.mark.parametrize("kind", ["crc", "garbage"])
async def test_corrupt_frames_are_a_malformed_response(runtime: BedrockRuntime, fake: FakeBedrock,
                                                       kind: str, after_events: int) -> None:
    # botocore's event-stream decoder raises ChecksumMismatch / InvalidPayloadLength (not
    # BotoCoreError): they must come out as a ProxyError, before or after the first event.
    fake.enqueue(corrupt_mid_stream(after_events, kind))
    received: list[dict[str, Any]] = []
    with pytest.raises(UpstreamUnavailable, match="Bedrock: malformed response") as info:
        async for event in runtime.converse_stream(REQUEST):
            received.append(event)
    assert len(received) == after_events
    assert "Bad Gateway" not in info.value.message  # the body is never quoted


@pytest.mark.parametrize("body", [
    {"output": "text"},
    {"output": {"message": {"content": "abc"}}},
    {"usage": {"inputTokens": "abc"}},
    [1, 2],
    "not an object",
])
async def test_converse_bodies_botocore_cannot_parse_are_a_malformed_response(
        runtime: BedrockRuntime, fake: FakeBedrock, body: Any) -> None:
    fake.enqueue(Reply(json_body=body))
    with pytest.raises(UpstreamUnavailable, match="Bedrock: malformed response"):
        await runtime.converse(REQUEST)


async def test_calls_past_the_connection_cap_wait_then_fail_as_pool_exhausted(fake: FakeBedrock) -> None:
    fake.reset()
    runtime = make_runtime(endpoint_url=fake.url, read_timeout_s=SLOW_READ_TIMEOUT_S,
                             max_connections=1, pool_timeout_s=0.2)
    try:
        fake.enqueue(stream_text(delay_s=0.05, chunk=1))
        stream = runtime.converse_stream(REQUEST)
        await anext(stream)  # holds the only slot while open
        assert (runtime.clients.in_use, runtime.clients.waiting) == (1, 0)
        waiter = asyncio.ensure_future(runtime.converse(REQUEST))
        assert await wait_until(lambda: runtime.clients.waiting == 1)
        with pytest.raises(UpstreamPoolExhausted) as info:
            await waiter
        assert info.value.status_code == 503 and info.value.headers["retry-after"] == "1"
        assert runtime.clients.waiting == 0
        await stream.aclose()
        assert runtime.clients.in_use == 0
        assert (await runtime.converse(REQUEST))["stopReason"] == "end_turn"  # the slot came back
    finally:
        await runtime.aclose()


async def test_bedrock_validation_message_is_passed_through(runtime: BedrockRuntime) -> None:
    bad = {**REQUEST, "messages": MESSAGES + MESSAGES}
    with pytest.raises(InvalidRequest, match="must alternate between user and assistant"):
        await runtime.converse(bad)


async def test_disconnect_mid_stream_raises_instead_of_hanging(slow_runtime: BedrockRuntime,
                                                               fake: FakeBedrock) -> None:
    fake.enqueue(disconnect_mid_stream(3))
    received: list[dict[str, Any]] = []
    started = time.monotonic()
    with pytest.raises(UpstreamUnavailable, match="Bedrock: connection failed"):
        async for event in slow_runtime.converse_stream(REQUEST):
            received.append(event)
    assert len(received) == 3 and time.monotonic() - started < SLOW_READ_TIMEOUT_S / 2


async def test_stall_before_the_response_is_a_timeout(runtime: BedrockRuntime, fake: FakeBedrock) -> None:
    fake.enqueue(converse_text(stall_s=5), stream_text(stall_s=5))
    with pytest.raises(UpstreamTimeout, match="Bedrock: read timed out"):
        await runtime.converse(REQUEST)
    with pytest.raises(UpstreamTimeout):
        await anext(runtime.converse_stream(REQUEST))


async def test_stall_mid_stream_is_a_timeout(runtime: BedrockRuntime, fake: FakeBedrock) -> None:
    fake.enqueue(stream_text(delays_s=(0.0, 0.0, 5.0)))
    received: list[dict[str, Any]] = []
    with pytest.raises(UpstreamTimeout):
        async for event in runtime.converse_stream(REQUEST):
            received.append(event)
    assert len(received) == 2


async def test_connection_refused_is_upstream_unavailable() -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    runtime = make_runtime(endpoint_url=f"http://127.0.0.1:{port}", connect_timeout_s=0.5)
    try:
        with pytest.raises(UpstreamUnavailable):
            await runtime.converse(REQUEST)
    finally:
        await runtime.aclose()


async def test_botocore_param_validation_is_invalid_request(fake: FakeBedrock) -> None:
    fake.reset()
    runtime = make_runtime(endpoint_url=fake.url, parameter_validation=True)
    try:
        with pytest.raises(InvalidRequest, match="Bedrock: Parameter validation failed"):
            await runtime.converse({"modelId": MODEL, "messages": "not a list"})
    finally:
        await runtime.aclose()
    assert fake.requests == []


async def test_no_param_validation_by_default(runtime: BedrockRuntime, fake: FakeBedrock) -> None:
    # Off for CPU (app/bedrock/clients.py): a request botocore would refuse goes out, and
    # Bedrock's own ValidationException (here the fake's, which runs botocore's check) is the 400.
    with pytest.raises(InvalidRequest, match='Missing required parameter in messages\\[0\\]: "content"'):
        await runtime.converse({"modelId": MODEL, "messages": [{"role": "user"}]})  # content is required
    assert len(fake.requests) == 1


@pytest.mark.parametrize("status, code", [(503, "ServiceUnavailableException"), (429, "ThrottlingException"),
                                          (500, "InternalServerException")])
async def test_botocore_does_not_retry(runtime: BedrockRuntime, fake: FakeBedrock, status: int, code: str) -> None:
    fake.enqueue(http_error(status, code, "try later"), http_error(status, code, "try later"))
    with pytest.raises(ProxyError):
        await runtime.converse(REQUEST)
    assert len(fake.requests) == 1


async def test_disconnect_is_not_retried(runtime: BedrockRuntime, fake: FakeBedrock) -> None:
    fake.enqueue(disconnect_mid_stream(0, converse_text()), converse_text())
    fake.enqueue(converse_text(stall_s=5))
    with pytest.raises(ProxyError):
        await anext(runtime.converse_stream(REQUEST))
    assert len(fake.requests) == 1


async def test_stopping_early_closes_the_http_response(runtime: BedrockRuntime, fake: FakeBedrock) -> None:
    fake.enqueue(stream_text(delays_s=(0.0, 0.0, 30.0)))
    stream = runtime.converse_stream(REQUEST)
    await anext(stream)
    await anext(stream)
    await stream.aclose()
    assert await wait_until(lambda: fake.disconnects == 1), "the fake never saw the client leave"


# --- credentials and client reuse ------------------------------------------------------------

async def test_default_chain_signs_with_sigv4(runtime: BedrockRuntime, fake: FakeBedrock) -> None:
    await runtime.converse(REQUEST)
    authorization = fake.requests[0].header("authorization") or ""
    assert authorization.startswith("AWS4-HMAC-SHA256 Credential=AKIDTESTEXAMPLE/")
    assert "/us-east-1/bedrock/aws4_request" in authorization
    assert fake.requests[0].header("x-amz-date")


@pytest.mark.parametrize("operation", ["converse", "converse_stream", "count_tokens"])
async def test_bearer_token_is_sent_instead_of_sigv4(runtime: BedrockRuntime, fake: FakeBedrock,
                                                     monkeypatch: pytest.MonkeyPatch, operation: str) -> None:
    # No AWS credentials at all, and a different key in the env var botocore would read:
    # the per-key client must use exactly its own key and need nothing else.
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", "ABSK-from-the-environment")
    fake.bearer_token = "ABSK-user-key-1"
    try:
        if operation == "converse":
            await runtime.converse(REQUEST, bearer_token="ABSK-user-key-1")
        elif operation == "converse_stream":
            assert await collect(runtime, bearer_token="ABSK-user-key-1")
        else:
            await runtime.count_tokens(MODEL, {"messages": MESSAGES}, bearer_token="ABSK-user-key-1")
    finally:
        fake.bearer_token = None
    (call,) = fake.requests
    assert call.header("authorization") == "Bearer ABSK-user-key-1"
    assert not any(v.startswith("AWS4-HMAC-SHA256") for _, v in call.headers)
    assert call.header("x-amz-security-token") is None and call.header("x-amz-date") is None


async def test_wrong_bearer_token_is_permission_denied(runtime: BedrockRuntime, fake: FakeBedrock) -> None:
    fake.bearer_token = "ABSK-right"
    try:
        with pytest.raises(PermissionDenied):
            await runtime.converse(REQUEST, bearer_token="ABSK-wrong")
    finally:
        fake.bearer_token = None


async def test_one_client_per_credential_reused(runtime: BedrockRuntime, fake: FakeBedrock) -> None:
    default = await runtime.clients.client_for(None)
    await runtime.converse(REQUEST)
    await runtime.converse(REQUEST)
    assert await runtime.clients.client_for(None) is default
    alice = await runtime.clients.client_for("ABSK-alice")
    await runtime.converse(REQUEST, bearer_token="ABSK-alice")
    assert await runtime.clients.client_for("ABSK-alice") is alice
    assert await runtime.clients.client_for("ABSK-bob") is not alice
    assert alice is not default
    assert [r.header("authorization")[:17] for r in fake.requests] == [
        "AWS4-HMAC-SHA256 ", "AWS4-HMAC-SHA256 ", "Bearer ABSK-alice"]


async def test_concurrent_first_calls_create_one_client(runtime: BedrockRuntime,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    created: list[str | None] = []
    original = BedrockClients._create

    async def counting(self: BedrockClients, bearer_token: str | None) -> Any:
        created.append(bearer_token)
        return await original(self, bearer_token)

    monkeypatch.setattr(BedrockClients, "_create", counting)
    await asyncio.gather(*(runtime.converse(REQUEST) for _ in range(5)),
                         *(runtime.converse(REQUEST, bearer_token="ABSK-k") for _ in range(5)))
    assert len(created) == 2 and set(created) == {None, "ABSK-k"}


async def test_bearer_clients_are_keyed_by_hash_not_by_token(runtime: BedrockRuntime) -> None:
    await runtime.clients.client_for("ABSK-secret-value")
    assert list(runtime.clients._bearer.keys()) == [token_key("ABSK-secret-value")]
    assert "ABSK-secret-value" not in token_key("ABSK-secret-value")


async def test_evicted_bearer_clients_are_closed_once_idle(fake: FakeBedrock, monkeypatch: pytest.MonkeyPatch) -> None:
    fake.reset()
    pooled: dict[str | None, Any] = {}
    original = BedrockClients._create

    async def recording(self: BedrockClients, bearer_token: str | None) -> Any:
        pooled[bearer_token] = await original(self, bearer_token)
        return pooled[bearer_token]

    monkeypatch.setattr(BedrockClients, "_create", recording)
    runtime = make_runtime(endpoint_url=fake.url, read_timeout_s=2.0, max_bearer_clients=2)
    try:
        fake.enqueue(stream_text(delays_s=(0.0, 0.0, 0.3)))
        stream = runtime.converse_stream(REQUEST, bearer_token="ABSK-a")
        await anext(stream)                                   # "a" is in use by an open stream
        await runtime.clients.client_for("ABSK-b")
        await runtime.clients.client_for("ABSK-c")            # evicts "a" (least recently used)
        assert token_key("ABSK-a") not in runtime.clients._bearer
        assert not pooled["ABSK-a"].closed                    # still streaming
        assert len([event async for event in stream]) > 3     # the stream finishes normally
        assert pooled["ABSK-a"].closed                        # closed when its last lease ended
        await runtime.clients.client_for("ABSK-a")            # evicts "b", idle: closed at once
        assert pooled["ABSK-b"].closed and not pooled["ABSK-c"].closed
    finally:
        await runtime.aclose()
    assert all(p.closed for p in pooled.values())


async def test_closed_runtime_refuses_calls(runtime: BedrockRuntime) -> None:
    await runtime.converse(REQUEST)
    await runtime.aclose()
    with pytest.raises(ApiError, match="closed"):
        await runtime.converse(REQUEST)


async def test_config_disables_retries_and_sets_timeouts_and_keepalive(runtime: BedrockRuntime) -> None:
    config = (await runtime.clients.client_for(None)).meta.config
    assert config.retries == {"total_max_attempts": 1, "mode": "standard"}
    assert (config.connect_timeout, config.read_timeout) == (1.0, READ_TIMEOUT_S)
    assert config.tcp_keepalive is True and config.max_pool_connections == runtime.clients.max_connections == 1000
    bearer_config = (await runtime.clients.client_for("ABSK-x")).meta.config
    assert bearer_config.signature_version == "bearer"


async def test_connections_use_tcp_keepalive(runtime: BedrockRuntime, monkeypatch: pytest.MonkeyPatch) -> None:
    # aiobotocore 2.25 ignores botocore's socket_options; SocketOptionsAIOHTTPSession applies them.
    sockets: list[socket.socket] = []
    original = client_module._socket_factory

    def recording(options: Any) -> Any:
        factory = original(options)

        def make(addr_info: Any) -> socket.socket:
            sockets.append(factory(addr_info))
            return sockets[-1]
        return make

    monkeypatch.setattr(client_module, "_socket_factory", recording)
    await runtime.converse(REQUEST)
    assert sockets and sockets[0].getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1


def test_socket_factory_applies_keepalive() -> None:
    factory = client_module._socket_factory([(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)])
    with factory((socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("127.0.0.1", 0))) as sock:
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1


# --- map_bedrock_error (pure, app/bedrock/errors.py) -----------------------------------------

@pytest.mark.parametrize("exc, expected", [
    (ReadTimeoutError(endpoint_url="https://bedrock-runtime"), UpstreamTimeout),
    (TimeoutError(), UpstreamTimeout),
    (aiohttp.ServerTimeoutError("Timeout on reading data from socket"), UpstreamTimeout),
    (aiohttp.ClientPayloadError("Response payload is not completed"), UpstreamUnavailable),
    (aiohttp.ServerDisconnectedError(), UpstreamUnavailable),
    (EndpointConnectionError(endpoint_url="https://bedrock-runtime"), UpstreamUnavailable),
    (ConnectionClosedError(endpoint_url="https://bedrock-runtime"), UpstreamUnavailable),
    (ParamValidationError(report="bad"), InvalidRequest),
])
def test_transport_errors_are_mapped(exc: BaseException, expected: type[ProxyError]) -> None:
    mapped = map_bedrock_error(exc)
    assert type(mapped) is expected and mapped.message.startswith("Bedrock: ")
