"""The fake Bedrock speaks the real wire format: event-stream frames decoded by botocore's own
decoder (CRCs checked), and HTTP routes, errors and validation as the service has them."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import httpx
import pytest
from botocore.eventstream import ChecksumMismatch, EventStreamBuffer

from tests.fakes.bedrock_server import (
    FakeBedrock,
    converse_text,
    disconnect_mid_stream,
    exception_mid_stream,
    http_error,
    is_count_tokens,
    message_reply,
    redacted_reasoning_block,
    running_fake_bedrock,
    stream_reasoning,
    stream_text,
    stream_tool_use,
)
from tests.fakes.eventstream import encode_event, encode_exception
from tests.support.constants import BEDROCK_MODEL_ID as MODEL

MODEL_PATH = "us.anthropic.claude-sonnet-4-20250514-v1%3A0"
BODY = {"messages": [{"role": "user", "content": [{"text": "hi"}]}]}


def decode(data: bytes) -> list:
    buffer = EventStreamBuffer()
    buffer.add_data(data)
    return list(buffer)


def test_event_round_trips_through_botocores_decoder() -> None:
    payload = {"contentBlockIndex": 0, "delta": {"text": "Hé"}}
    (message,) = decode(encode_event("contentBlockDelta", payload))
    assert message.headers == {":event-type": "contentBlockDelta", ":content-type": "application/json",
                               ":message-type": "event"}
    assert json.loads(message.payload) == payload
    assert message.to_response_dict()["status_code"] == 200


def test_exception_frame_round_trips() -> None:
    (message,) = decode(encode_exception("throttlingException", "Too many tokens"))
    assert message.headers[":message-type"] == "exception"
    assert message.headers[":exception-type"] == "throttlingException"
    assert json.loads(message.payload) == {"message": "Too many tokens"}
    assert message.to_response_dict()["status_code"] == 400


def test_bytes_become_base64_in_the_json_payload() -> None:
    (message,) = decode(encode_event("contentBlockDelta", {
        "contentBlockIndex": 0, "delta": {"reasoningContent": {"redactedContent": b"\x00\xffsecret"}}}))
    encoded = json.loads(message.payload)["delta"]["reasoningContent"]["redactedContent"]
    assert base64.b64decode(encoded) == b"\x00\xffsecret"


def test_several_frames_split_anywhere_decode_in_order() -> None:
    data = b"".join(encode_event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": str(i)}})
                    for i in range(5))
    buffer, seen = EventStreamBuffer(), []
    for i in range(0, len(data), 7):
        buffer.add_data(data[i:i + 7])
        seen += [json.loads(m.payload)["delta"]["text"] for m in buffer]
    assert seen == ["0", "1", "2", "3", "4"]


@pytest.mark.parametrize("offset", [9, -10, -1])  # prelude CRC, payload, message CRC
def test_a_flipped_byte_fails_the_crc_check(offset: int) -> None:
    frame = bytearray(encode_event("messageStop", {"stopReason": "end_turn"}))
    frame[offset] ^= 0x01
    with pytest.raises(ChecksumMismatch):
        decode(bytes(frame))


# --- replies -------------------------------------------------------------------------------

def test_text_stream_has_bedrocks_event_order() -> None:
    events = stream_text("Hello!", chunk=4).stream_events()
    assert [next(iter(e)) for e in events] == [
        "messageStart", "contentBlockDelta", "contentBlockDelta", "contentBlockStop", "messageStop", "metadata"]
    assert [e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e] == ["Hell", "o!"]
    assert events[-1]["metadata"]["usage"]["inputTokens"] == 25
    assert events[-1]["metadata"]["metrics"] == {"latencyMs": 321}


def test_tool_use_stream_starts_the_block_and_splits_the_input_json() -> None:
    events = stream_tool_use("Bash", {"command": "echo hi"}, tool_use_id="tooluse_1", chunk=5).stream_events()
    assert events[1] == {"contentBlockStart": {"contentBlockIndex": 0, "start": {
        "toolUse": {"toolUseId": "tooluse_1", "name": "Bash"}}}}
    pieces = [e["contentBlockDelta"]["delta"]["toolUse"]["input"] for e in events if "contentBlockDelta" in e]
    assert len(pieces) > 1 and json.loads("".join(pieces)) == {"command": "echo hi"}
    assert events[-2] == {"messageStop": {"stopReason": "tool_use"}}


def test_reasoning_stream_ends_the_block_with_its_signature() -> None:
    events = stream_reasoning("Let me think", "sig-1", then_text="Done").stream_events()
    deltas = [e["contentBlockDelta"] for e in events if "contentBlockDelta" in e]
    assert deltas[-2] == {"contentBlockIndex": 0, "delta": {"reasoningContent": {"signature": "sig-1"}}}
    assert deltas[-1] == {"contentBlockIndex": 1, "delta": {"text": "Done"}}


def test_converse_body_has_the_converse_shape() -> None:
    body = converse_text("Hi").converse_body()
    assert body["output"] == {"message": {"role": "assistant", "content": [{"text": "Hi"}]}}
    assert body["stopReason"] == "end_turn" and body["metrics"] == {"latencyMs": 321}


# --- over HTTP -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fake() -> Iterator[FakeBedrock]:
    with running_fake_bedrock() as running:
        yield running


@pytest.fixture(autouse=True)
def _reset(fake: FakeBedrock) -> None:
    fake.reset()


def post(fake: FakeBedrock, action: str, body: object = BODY, model: str = MODEL_PATH, **kw: object) -> httpx.Response:
    return httpx.post(f"{fake.url}/model/{model}/{action}", json=body, timeout=5, **kw)


def test_converse_route_records_the_call(fake: FakeBedrock) -> None:
    response = post(fake, "converse", headers={"authorization": "Bearer abc"})
    assert response.status_code == 200 and response.json()["output"]["message"]["content"][0]["text"]
    (recorded,) = fake.requests
    assert (recorded.operation, recorded.model_id) == ("Converse", MODEL)
    assert recorded.raw_path == f"/model/{MODEL_PATH}/converse"
    assert recorded.header("Authorization") == "Bearer abc" and recorded.json() == BODY


def test_an_arn_model_id_with_encoded_slashes_is_decoded(fake: FakeBedrock) -> None:
    arn = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc123"
    post(fake, "converse", model=arn.replace(":", "%3A").replace("/", "%2F"))
    assert fake.requests[0].model_id == arn


def test_converse_stream_route_sends_chunked_event_frames(fake: FakeBedrock) -> None:
    reply = stream_text("Hello there", chunk=5)
    fake.enqueue(reply)
    response = post(fake, "converse-stream")
    assert response.headers["content-type"] == "application/vnd.amazon.eventstream"
    assert response.headers["transfer-encoding"] == "chunked"
    messages = decode(response.content)
    assert [m.headers[":event-type"] for m in messages] == [next(iter(e)) for e in reply.stream_events()]


def test_exception_mid_stream_follows_the_first_events(fake: FakeBedrock) -> None:
    fake.enqueue(exception_mid_stream(2, "ModelStreamErrorException", "boom"))
    messages = decode(post(fake, "converse-stream").content)
    assert [m.headers[":message-type"] for m in messages] == ["event", "event", "exception"]
    assert messages[-1].headers[":exception-type"] == "modelStreamErrorException"


def test_disconnect_mid_stream_truncates_the_body(fake: FakeBedrock) -> None:
    fake.enqueue(disconnect_mid_stream(2))
    with pytest.raises(httpx.RemoteProtocolError):
        post(fake, "converse-stream")


def test_redacted_reasoning_is_base64_on_the_wire(fake: FakeBedrock) -> None:
    fake.enqueue(message_reply(redacted_reasoning_block(b"\x01\x02opaque")))
    converse = post(fake, "converse").json()
    assert converse["output"]["message"]["content"][0] == {
        "reasoningContent": {"redactedContent": base64.b64encode(b"\x01\x02opaque").decode()}}


def test_http_error_looks_like_the_service(fake: FakeBedrock) -> None:
    fake.enqueue(http_error(429, "ThrottlingException", "Too many requests, please wait before trying again."))
    response = post(fake, "converse")
    assert response.status_code == 429
    assert response.headers["x-amzn-errortype"] == (
        "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/")
    assert response.json() == {"message": "Too many requests, please wait before trying again."}


def test_count_tokens_answers_the_setting_unless_scripted(fake: FakeBedrock) -> None:
    fake.count_tokens_input_tokens = 77
    body = {"input": {"converse": BODY}}
    assert post(fake, "count-tokens", body).json() == {"inputTokens": 77}
    fake.enqueue(http_error(None, "AccessDeniedException", "no"), when=is_count_tokens)
    assert post(fake, "converse").status_code == 200  # the scripted error waits for CountTokens
    assert post(fake, "count-tokens", body).status_code == 403
    fake.count_tokens_input_tokens = 42


@pytest.mark.parametrize("messages, fragment", [
    ([], "must start with a user message"),
    ([{"role": "assistant", "content": [{"text": "x"}]}], "must start with a user message"),
    ([{"role": "user", "content": [{"text": "a"}]}, {"role": "user", "content": [{"text": "b"}]}], "must alternate"),
])
def test_invalid_messages_get_a_validation_exception(fake: FakeBedrock, messages: list, fragment: str) -> None:
    response = post(fake, "converse", {"messages": messages})
    assert response.status_code == 400
    assert response.headers["x-amzn-errortype"].startswith("ValidationException:")
    assert fragment in response.json()["message"]


@pytest.mark.parametrize("action", ["converse", "converse-stream"])
@pytest.mark.parametrize("body, fragment", [
    ({**BODY, "inferenceConfig": {"maxTokens": "64"}}, "Invalid type for parameter inferenceConfig.maxTokens"),
    ({**BODY, "temperatureX": 1}, 'Unknown parameter in input: "temperatureX"'),
    ({"messages": [{"role": "user"}]}, 'Missing required parameter in messages[0]: "content"'),
])
def test_requests_botocore_would_refuse_get_a_validation_exception(fake: FakeBedrock, action: str, body: dict,
                                                                     fragment: str) -> None:
    # The proxy's client skips botocore's validation (CPU, app/bedrock/clients.py); the fake runs it.
    response = post(fake, action, body)
    assert response.status_code == 400
    assert response.headers["x-amzn-errortype"].startswith("ValidationException:")
    assert fragment in response.json()["message"]


def test_base64_blobs_pass_the_shape_check(fake: FakeBedrock) -> None:
    image = {"image": {"format": "png", "source": {"bytes": base64.b64encode(b"\x89PNG").decode()}}}
    response = post(fake, "converse", {"messages": [{"role": "user", "content": [image, {"text": "what is it?"}]}]})
    assert response.status_code == 200, response.text
