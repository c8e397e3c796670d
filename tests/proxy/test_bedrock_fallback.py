"""Fallback to Bedrock end to end inside the test process: the official ``anthropic`` SDK (and raw
httpx where the bytes matter) -> the proxy -> a fake Anthropic and a fake Bedrock that speaks the
real event-stream framing to the real aioboto3 client.

Covers the routing (429 + cooldown, 5xx circuit, policies), the faults (Bedrock throttled too,
exceptions mid-stream, Anthropic dying after its first byte), credentials (the client's Anthropic
credential never reaches Bedrock; a registered Bedrock API key goes as a bearer token), thinking
signatures across a provider switch in both directions, and count_tokens."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import anthropic
import httpx

from app.store.usage import EVENTS
from tests.conftest import CLIENT_API_KEY, RunningProxy, make_settings, start_proxy
from tests.fakes.anthropic_server import (FakeAnthropic, error_reply, overloaded_reply, rate_limit_reply,
                                          text_reply, thinking_block, tool_use_block)
from tests.fakes.anthropic_server import message_reply as anthropic_message
from tests.fakes.bedrock_server import (DEFAULT_TEXT as BEDROCK_TEXT, DEFAULT_USAGE as BEDROCK_USAGE,
                                        FakeBedrock, disconnect_mid_stream, exception_mid_stream,
                                        http_error, is_converse_stream, stream_reasoning,
                                        stream_text)
from tests.support.constants import MODEL
from tests.support.sse import sse_events

SIGNATURE_ERROR = "messages.1.content.0: Invalid `signature` in `thinking` block"


def sdk(proxy: RunningProxy, *, key: str | None = None, api_key: str = CLIENT_API_KEY) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key=api_key, base_url=proxy.url, http_client=proxy.client(), max_retries=0,
                               default_headers={"x-proxy-key": key or proxy.key})


def post(proxy: RunningProxy, body: dict[str, Any], *, key: str | None = None,
         path: str = "/v1/messages") -> httpx.Response:
    return proxy.http.post(path, json=body, timeout=30,
                      headers={"x-proxy-key": key or proxy.key, "x-api-key": CLIENT_API_KEY})



def stream_raw(proxy: RunningProxy, body: dict[str, Any], *, key: str | None = None) -> httpx.Response:
    with proxy.http.stream("POST", "/v1/messages", json={**body, "stream": True}, timeout=30,
                      headers={"x-proxy-key": key or proxy.key, "x-api-key": CLIENT_API_KEY}) as response:
        response.read()
    return response


HELLO = {"model": MODEL, "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}


def test_429_falls_back_then_cooldown_skips_anthropic(fb_proxy: RunningProxy, fake_anthropic: FakeAnthropic,
                                                      fake_bedrock: FakeBedrock) -> None:
    fake_anthropic.enqueue(rate_limit_reply(retry_after_s=30))
    first = sdk(fb_proxy).messages.with_raw_response.create(**HELLO)
    message = first.parse()
    assert first.headers["x-proxy-provider"] == "bedrock"
    assert message.content[0].text == BEDROCK_TEXT
    assert message.model == MODEL  # never the Bedrock id
    assert message.id.startswith("msg_")
    assert message.usage.input_tokens == BEDROCK_USAGE["inputTokens"]
    assert message.usage.cache_read_input_tokens == BEDROCK_USAGE["cacheReadInputTokens"]
    assert message.usage.cache_creation_input_tokens == BEDROCK_USAGE["cacheWriteInputTokens"]
    assert len(fake_anthropic.messages_requests()) == 1

    second = sdk(fb_proxy).messages.with_raw_response.create(**HELLO)
    assert second.headers["x-proxy-provider"] == "bedrock"
    assert second.headers["x-proxy-fallback-reason"].startswith("cooldown:")
    assert len(fake_anthropic.messages_requests()) == 1, "the cooldown must skip Anthropic"

    calls = fake_bedrock.calls("Converse")
    assert len(calls) == 2
    assert calls[0].model_id.startswith("us.anthropic.claude-sonnet-4-6")  # an inference profile
    for call in calls:
        assert all(CLIENT_API_KEY not in value for _, value in call.headers)
        assert call.header("authorization", ).startswith("AWS4-HMAC-SHA256")
        assert fb_proxy.key.encode() not in call.body

    totals = fb_proxy.wait_for_usage(lambda t: t["requests"] >= 2, provider="bedrock")
    assert totals["requests"] == 2
    assert totals["input_tokens"] == 2 * BEDROCK_USAGE["inputTokens"]
    assert totals["output_tokens"] == 2 * BEDROCK_USAGE["outputTokens"]
    event = _last_event(fb_proxy)
    assert (event["provider"], event["model"], event["provider_model"]) == ("bedrock", MODEL, calls[-1].model_id)
    assert event["fallback_reason"].startswith("cooldown:")


def test_another_credential_is_not_in_cooldown(fb_proxy: RunningProxy, fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.enqueue(rate_limit_reply(retry_after_s=30))
    assert sdk(fb_proxy).messages.with_raw_response.create(**HELLO).headers["x-proxy-provider"] == "bedrock"
    other = sdk(fb_proxy, api_key="sk-ant-api03-a-different-developer").messages.with_raw_response.create(**HELLO)
    assert other.headers["x-proxy-provider"] == "anthropic"


def test_streaming_fallback_is_accepted_by_the_sdk(fb_proxy: RunningProxy, fake_anthropic: FakeAnthropic,
                                                   fake_bedrock: FakeBedrock) -> None:
    fake_anthropic.enqueue(overloaded_reply())
    fake_bedrock.enqueue(stream_reasoning("let me think", then_text="the answer", chunk=3))
    with sdk(fb_proxy).messages.stream(**HELLO) as stream:
        final = stream.get_final_message()
    assert [block.type for block in final.content] == ["thinking", "text"]
    assert final.content[0].thinking == "let me think" and final.content[0].signature
    assert final.content[1].text == "the answer"
    assert final.model == MODEL and final.stop_reason == "end_turn"
    assert final.usage.output_tokens == BEDROCK_USAGE["outputTokens"]
    assert fake_bedrock.calls("ConverseStream")


def test_5xx_circuit_opens_after_threshold(fake_anthropic: FakeAnthropic, fake_bedrock: FakeBedrock) -> None:
    settings = make_settings(fake_anthropic.url, bedrock_endpoint_url=fake_bedrock.url,
                             default_fallback_policy="anthropic_first", circuit_failure_threshold=2)
    for running in start_proxy(settings, in_process=True):
        fake_anthropic.enqueue(overloaded_reply(), error_reply(503))
        for _ in range(2):
            assert post(running, HELLO).headers["x-proxy-provider"] == "bedrock"
        third = post(running, HELLO)
        assert third.headers["x-proxy-provider"] == "bedrock"
        assert third.headers["x-proxy-fallback-reason"].startswith("cooldown:")
        assert len(fake_anthropic.messages_requests()) == 2


def test_client_errors_do_not_fall_back(fb_proxy: RunningProxy, fake_anthropic: FakeAnthropic,
                                        fake_bedrock: FakeBedrock) -> None:
    fake_anthropic.enqueue(error_reply(400, "max_tokens: too large"))
    response = post(fb_proxy, HELLO)
    assert response.status_code == 400 and response.headers["x-proxy-provider"] == "anthropic"
    assert not fake_bedrock.requests


def test_bedrock_throttled_too_gives_429(fb_proxy: RunningProxy, fake_anthropic: FakeAnthropic,
                                         fake_bedrock: FakeBedrock) -> None:
    fake_anthropic.enqueue(rate_limit_reply(retry_after_s=30))
    fake_bedrock.enqueue(http_error(429, "ThrottlingException", "Too many requests, please wait."))
    response = post(fb_proxy, HELLO)
    assert response.status_code == 429
    assert response.json()["error"]["type"] == "rate_limit_error"
    assert response.headers.get("retry-after")
    # In cooldown, Bedrock throttled again: still Anthropic's error shape, never a stack trace.
    fake_bedrock.enqueue(http_error(429, "ThrottlingException", "Too many requests, please wait."))
    again = post(fb_proxy, HELLO)
    assert again.status_code == 429 and again.json()["error"]["type"] == "rate_limit_error"


def test_bedrock_only_policy_needs_no_anthropic_credential(fb_proxy: RunningProxy, fake_anthropic: FakeAnthropic,
                                                           fake_bedrock: FakeBedrock) -> None:
    key = fb_proxy.new_key(fallback_policy="bedrock_only")
    response = fb_proxy.http.post("/v1/messages", json=HELLO, headers={"x-proxy-key": key["key"]})
    assert response.status_code == 200, response.text
    assert response.json()["content"][0]["text"] == BEDROCK_TEXT
    assert not fake_anthropic.requests


def test_mid_stream_bedrock_exception_becomes_error_event_and_usage_is_kept(
        fb_proxy: RunningProxy, fake_bedrock: FakeBedrock) -> None:
    key = fb_proxy.new_key(fallback_policy="bedrock_only")
    fake_bedrock.enqueue(exception_mid_stream(3, "ModelStreamErrorException", "The model stream failed",
                                              reply=stream_text("one two three four five six", chunk=4)))
    response = stream_raw(fb_proxy, HELLO, key=key["key"])
    assert response.status_code == 200
    events = sse_events(response.content)
    assert events[0][0] == "message_start"
    assert events[-1][0] == "error" and events[-1][1]["error"]["type"] == "api_error"
    assert "message_stop" not in [name for name, _ in events]
    totals = fb_proxy.wait_for_usage(lambda t: t["requests"] >= 1, access_key_id=key["id"])
    assert totals["requests"] == 1 and totals["errors"] == 1


def test_bedrock_disconnect_mid_stream_ends_with_error_event(fb_proxy: RunningProxy,
                                                             fake_bedrock: FakeBedrock) -> None:
    key = fb_proxy.new_key(fallback_policy="bedrock_only")
    fake_bedrock.enqueue(disconnect_mid_stream(3, stream_text("abcdefghijklmnopqrstuvwxyz", chunk=2)))
    events = sse_events(stream_raw(fb_proxy, HELLO, key=key["key"]).content)
    assert events[-1][0] == "error"
    texts = [e["delta"]["text"] for name, e in events if name == "content_block_delta"]
    assert all(texts)  # never an empty text delta


def test_anthropic_dies_after_first_byte_no_double_answer(fb_proxy: RunningProxy, fake_anthropic: FakeAnthropic,
                                                          fake_bedrock: FakeBedrock) -> None:
    fake_anthropic.enqueue(text_reply("y" * 300, abort_after_events=4))
    events = sse_events(stream_raw(fb_proxy, HELLO).content)
    assert [name for name, _ in events].count("message_start") == 1
    assert events[-1][0] == "error"
    assert not fake_bedrock.requests, "after the first byte there is no fallback"


def test_registered_bedrock_key_goes_as_bearer(fb_proxy: RunningProxy, fake_bedrock: FakeBedrock) -> None:
    key = fb_proxy.new_key(fallback_policy="bedrock_only")
    bedrock_key = "ABSKZXhhbXBsZS1iZWRyb2NrLWFwaS1rZXk="
    assert fb_proxy.admin.post(f"/admin/access-keys/{key['id']}/bedrock-key",
                               json={"api_key": bedrock_key}).status_code == 200
    assert post(fb_proxy, HELLO, key=key["key"]).status_code == 200
    call = fake_bedrock.requests[-1]
    assert call.header("authorization") == f"Bearer {bedrock_key}"
    # Removing it takes effect at once: back to the default AWS chain (SigV4).
    fb_proxy.admin.delete(f"/admin/access-keys/{key['id']}/bedrock-key")
    assert post(fb_proxy, HELLO, key=key["key"]).status_code == 200
    assert fake_bedrock.requests[-1].header("authorization").startswith("AWS4-HMAC-SHA256")


def test_unmappable_model_is_404_naming_it(fb_proxy: RunningProxy) -> None:
    key = fb_proxy.new_key(fallback_policy="bedrock_only")
    response = post(fb_proxy, {**HELLO, "model": "gpt-4o"}, key=key["key"])
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found_error"
    assert "gpt-4o" in response.json()["error"]["message"]


def test_count_tokens_falls_back_to_bedrock_count(fb_proxy: RunningProxy, fake_anthropic: FakeAnthropic,
                                                  fake_bedrock: FakeBedrock) -> None:
    fake_anthropic.enqueue(overloaded_reply(), when=lambda r: r.path.endswith("count_tokens"))
    fake_bedrock.count_tokens_input_tokens = 1234
    response = post(fb_proxy, {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]},
                    path="/v1/messages/count_tokens")
    assert response.status_code == 200
    assert response.json() == {"input_tokens": 1234}
    assert response.headers["x-proxy-token-count"] == "bedrock"


def test_count_tokens_estimate_when_bedrock_cannot_count_is_never_low(
        fb_proxy: RunningProxy, fake_anthropic: FakeAnthropic, fake_bedrock: FakeBedrock) -> None:
    text = "The quick brown fox jumps over the lazy dog. " * 200  # ~2,000 real tokens
    fake_anthropic.enqueue(overloaded_reply(), when=lambda r: r.path.endswith("count_tokens"))
    fake_bedrock.enqueue(http_error(400, "ValidationException", "CountTokens is not supported for this model"))
    response = post(fb_proxy, {"model": MODEL, "messages": [{"role": "user", "content": text}]},
                    path="/v1/messages/count_tokens")
    assert response.status_code == 200
    assert response.headers["x-proxy-token-count"] == "estimate"
    assert response.json()["input_tokens"] >= 2000


def _thinking_history() -> dict[str, Any]:
    return {"model": MODEL, "max_tokens": 256, "thinking": {"type": "enabled", "budget_tokens": 1024},
            "messages": [
                {"role": "user", "content": "first"},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "earlier thought", "signature": "c2lnbmVkLWJ5LW90aGVy"},
                    {"type": "text", "text": "earlier answer"}]},
                {"role": "user", "content": "second"}]}


def test_anthropic_rejects_foreign_signature_then_retries_without_thinking(
        fb_proxy: RunningProxy, fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.enqueue(error_reply(400, SIGNATURE_ERROR), when=lambda r: b'"signature"' in r.body)
    response = post(fb_proxy, _thinking_history())
    assert response.status_code == 200, response.text
    assert response.headers["x-proxy-provider"] == "anthropic"
    first, retry = fake_anthropic.messages_requests()
    assert b"c2lnbmVkLWJ5LW90aGVy" in first.body
    retried = json.loads(retry.body)
    assert all(block.get("type") not in ("thinking", "redacted_thinking")
               for message in retried["messages"] if isinstance(message["content"], list)
               for block in message["content"])
    assert retried["messages"][1]["content"] == [{"type": "text", "text": "earlier answer"}]
    assert _notes_of_last_event(fb_proxy) == ["thinking_stripped"]


def test_bedrock_rejects_foreign_signature_then_retries_without_thinking(
        fb_proxy: RunningProxy, fake_bedrock: FakeBedrock) -> None:
    key = fb_proxy.new_key(fallback_policy="bedrock_only")
    fake_bedrock.enqueue(http_error(400, "ValidationException", "The provided `signature` in `thinking` block "
                                    "is invalid"), when=lambda r: b"reasoningContent" in r.body)
    response = post(fb_proxy, _thinking_history(), key=key["key"])
    assert response.status_code == 200, response.text
    first, retry = fake_bedrock.calls("Converse")
    assert b"c2lnbmVkLWJ5LW90aGVy" in first.body
    assert b"reasoningContent" not in retry.body
    assert _notes_of_last_event(fb_proxy) == ["thinking_stripped"]


def _last_event(proxy: RunningProxy) -> dict[str, Any]:
    """The newest stored usage event (after the recorder's next flush)."""
    proxy.wait_for_usage(lambda t: t["requests"] >= 1)

    async def newest() -> dict[str, Any]:
        docs = await proxy.services.store.db[EVENTS].find({}).sort("time", -1).limit(1).to_list(1)
        return docs[0]

    return asyncio.run(newest())


def _notes_of_last_event(proxy: RunningProxy) -> list[str]:
    return _last_event(proxy)["notes"]


def test_other_400s_are_not_retried(fb_proxy: RunningProxy, fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.enqueue(error_reply(400, "messages: roles must alternate"))
    response = post(fb_proxy, _thinking_history())
    assert response.status_code == 400
    assert len(fake_anthropic.messages_requests()) == 1


def test_thinking_signature_survives_a_bedrock_round_trip(fb_proxy: RunningProxy,
                                                          fake_bedrock: FakeBedrock) -> None:
    """Bedrock signs a reasoning block; the client replays it; Bedrock gets the same bytes back."""
    key = fb_proxy.new_key(fallback_policy="bedrock_only")
    signature = "EqMBCkgIBhABGAIiQJ+/=="
    fake_bedrock.enqueue(stream_reasoning("plan", signature=signature, then_text="ok"), when=is_converse_stream)
    client = sdk(fb_proxy, key=key["key"])
    with client.messages.stream(**{**HELLO, "thinking": {"type": "enabled", "budget_tokens": 1024},
                                   "max_tokens": 2048}) as stream:
        first = stream.get_final_message()
    assert first.content[0].signature == signature
    client.messages.create(model=MODEL, max_tokens=2048, thinking={"type": "enabled", "budget_tokens": 1024},
                           messages=[{"role": "user", "content": "hi"},
                                     {"role": "assistant", "content": [b.model_dump(exclude_none=True)
                                                                       for b in first.content]},
                                     {"role": "user", "content": "and?"}])
    replayed = fake_bedrock.calls("Converse")[-1].json()["messages"][1]["content"][0]
    assert replayed["reasoningContent"]["reasoningText"] == {"text": "plan", "signature": signature}


def test_thinking_history_reaches_anthropic_byte_for_byte(fb_proxy: RunningProxy,
                                                           fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.enqueue(anthropic_message(thinking_block("t", "sig/+=="), tool_use_block("Bash", {"c": 1})))
    body = json.dumps(_thinking_history(), indent=1).encode()  # odd spacing: must survive as is
    response = fb_proxy.http.post("/v1/messages", content=body, timeout=30,
                          headers={"x-proxy-key": fb_proxy.key, "x-api-key": CLIENT_API_KEY,
                                   "content-type": "application/json"})
    assert response.status_code == 200
    assert fake_anthropic.messages_requests()[-1].body == body


def test_undecryptable_bedrock_key_is_a_clear_error_not_a_trace(fb_proxy: RunningProxy,
                                                               fake_bedrock: FakeBedrock) -> None:
    key = fb_proxy.new_key(fallback_policy="bedrock_only")
    fb_proxy.admin.post(f"/admin/access-keys/{key['id']}/bedrock-key", json={"api_key": "ABSKdGFtcGVyZWQ="})
    doc = asyncio.run(fb_proxy.services.access_keys.get(key["id"]))
    envelope = {**doc["bedrock_key"], "ciphertext": "AAAA" + doc["bedrock_key"]["ciphertext"][4:]}
    asyncio.run(fb_proxy.services.access_keys.update(key["id"], {"bedrock_key": envelope}))
    response = post(fb_proxy, HELLO, key=key["key"])
    assert response.status_code == 500
    assert response.json()["error"]["type"] == "api_error"
    assert "register it again" in response.json()["error"]["message"]
    assert not fake_bedrock.requests


def test_failed_fallback_is_recorded_once_with_the_bedrock_model(fb_proxy: RunningProxy, fake_anthropic: FakeAnthropic,
                                                                 fake_bedrock: FakeBedrock) -> None:
    fake_anthropic.enqueue(overloaded_reply())
    fake_bedrock.enqueue(http_error(503, "ServiceUnavailableException", "Bedrock is unavailable"))
    response = post(fb_proxy, HELLO)
    assert response.status_code == 529  # Anthropic's own answer, since Bedrock failed too
    event = _last_event(fb_proxy)
    assert (event["provider"], event["status"]) == ("bedrock", 529)
    assert event["provider_model"] == fake_bedrock.calls("Converse")[0].model_id
    assert fb_proxy.usage_totals()["requests"] == 1


def test_model_map_override_routes_the_next_fallback(fb_proxy: RunningProxy, fake_bedrock: FakeBedrock) -> None:
    key = fb_proxy.new_key(fallback_policy="bedrock_only")
    profile = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/team-a"
    assert fb_proxy.admin.put(f"/admin/model-map/{MODEL}", json={"bedrock_model_id": profile}).status_code == 200
    response = post(fb_proxy, HELLO, key=key["key"])
    assert response.status_code == 200 and response.json()["model"] == MODEL
    assert fake_bedrock.calls("Converse")[-1].model_id == profile
    fb_proxy.admin.delete(f"/admin/model-map/{MODEL}")
    post(fb_proxy, HELLO, key=key["key"])
    assert fake_bedrock.calls("Converse")[-1].model_id.startswith("us.anthropic.claude-sonnet-4-6")
