"""Cache TTL on the Bedrock fallback, end to end: the official ``anthropic`` SDK -> the real app -> the
real aiobotocore client (with the vendored bedrock-runtime model) -> the fake Bedrock, which records
the bytes on the wire. ``cache_control.ttl: "1h"`` must arrive as ``cachePoint.ttl: "1h"`` (botocore's
own 1.40 model would refuse that member client-side), Bedrock's ``cacheDetails`` must come back as
``usage.cache_creation.ephemeral_1h_input_tokens`` and be stored (priced at the 1h rate), and
CountTokens goes to the foundation-model id."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import anthropic
import pytest

from app.store.usage import EVENTS
from tests.conftest import CLIENT_API_KEY, RunningProxy, make_settings, start_proxy
from tests.fakes.bedrock_server import FakeBedrock, converse_text, running_fake_bedrock, stream_text

MODEL = "claude-sonnet-4-6"  # offers the 1h TTL on Bedrock
ONE_HOUR = {"type": "ephemeral", "ttl": "1h"}
USAGE_1H = {"inputTokens": 10, "outputTokens": 5, "totalTokens": 2015, "cacheReadInputTokens": 0,
            "cacheWriteInputTokens": 2000,
            "cacheDetails": [{"ttl": "1h", "inputTokens": 1500}, {"ttl": "5m", "inputTokens": 500}]}


@pytest.fixture
def fake_bedrock() -> Iterator[FakeBedrock]:
    with running_fake_bedrock(count_tokens_input_tokens=77) as fake:
        yield fake


@pytest.fixture
def proxy_b(fake_bedrock: FakeBedrock) -> Iterator[RunningProxy]:
    yield from start_proxy(make_settings("http://127.0.0.1:9", bedrock_endpoint_url=fake_bedrock.url,
                                         default_fallback_policy="bedrock_only"))


def sdk(proxy: RunningProxy) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key=CLIENT_API_KEY, base_url=proxy.url, max_retries=0,
                               default_headers={"x-proxy-key": proxy.key})


PARAMS: dict[str, Any] = {
    "model": MODEL, "max_tokens": 64,
    "tools": [{"name": "Bash", "description": "Run a command", "cache_control": {"type": "ephemeral"},
               "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}}}],
    "system": [{"type": "text", "text": "You are Claude Code.", "cache_control": ONE_HOUR}],
    "messages": [{"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}}]}],
}


def cache_points(body: bytes) -> list[dict[str, Any]]:
    """The cachePoint objects of a recorded Converse body, in prompt order."""
    request = json.loads(body)
    lists = [request.get("toolConfig", {}).get("tools", []), request.get("system", []),
             *(m["content"] for m in request["messages"])]
    return [b["cachePoint"] for blocks in lists for b in blocks if "cachePoint" in b]


def newest_event(proxy: RunningProxy) -> dict[str, Any]:
    proxy.wait_for_usage(lambda t: t["requests"] >= 1)

    async def newest() -> dict[str, Any]:
        return (await proxy.services.store.db[EVENTS].find({}).sort("time", -1).limit(1).to_list(1))[0]

    return asyncio.run(newest())


def test_ttl_reaches_converse_and_the_1h_writes_come_back(proxy_b: RunningProxy, fake_bedrock: FakeBedrock) -> None:
    fake_bedrock.enqueue(converse_text("ok", usage=USAGE_1H))
    message = sdk(proxy_b).messages.create(**PARAMS)
    (call,) = fake_bedrock.calls("Converse")
    # the tools breakpoint (no ttl) is raised to 1h: TTLs may not increase along the prompt
    assert cache_points(call.body) == [{"type": "default", "ttl": "1h"}, {"type": "default", "ttl": "1h"},
                                       {"type": "default"}]
    assert message.usage.cache_creation_input_tokens == 2000
    assert message.usage.cache_creation is not None
    assert message.usage.cache_creation.ephemeral_1h_input_tokens == 1500
    assert message.usage.cache_creation.ephemeral_5m_input_tokens == 500
    event = newest_event(proxy_b)
    assert (event["cache_creation_input_tokens"], event["cache_creation_1h_input_tokens"]) == (2000, 1500)


def test_ttl_reaches_converse_stream_and_the_1h_writes_are_recorded(proxy_b: RunningProxy,
                                                                     fake_bedrock: FakeBedrock) -> None:
    fake_bedrock.enqueue(stream_text("streamed", usage=USAGE_1H))
    with sdk(proxy_b).messages.stream(**PARAMS) as stream:
        final = stream.get_final_message()
    (call,) = fake_bedrock.calls("ConverseStream")
    assert [p.get("ttl") for p in cache_points(call.body)] == ["1h", "1h", None]
    assert final.usage.cache_creation_input_tokens == 2000
    event = newest_event(proxy_b)
    assert (event["cache_creation_input_tokens"], event["cache_creation_1h_input_tokens"]) == (2000, 1500)


def test_without_cache_details_every_write_is_5m(proxy_b: RunningProxy, fake_bedrock: FakeBedrock) -> None:
    usage = {k: v for k, v in USAGE_1H.items() if k != "cacheDetails"}
    fake_bedrock.enqueue(converse_text("ok", usage=usage))
    message = sdk(proxy_b).messages.create(**PARAMS)
    assert message.usage.cache_creation is not None
    assert message.usage.cache_creation.ephemeral_5m_input_tokens == 2000
    assert newest_event(proxy_b)["cache_creation_1h_input_tokens"] == 0


def test_count_tokens_goes_to_the_foundation_model_id(proxy_b: RunningProxy, fake_bedrock: FakeBedrock) -> None:
    client = sdk(proxy_b)
    assert client.messages.count_tokens(model=MODEL, messages=[{"role": "user", "content": "hi"}]).input_tokens == 77
    assert client.messages.count_tokens(model=MODEL, tools=PARAMS["tools"],
                                        messages=[{"role": "user", "content": "hi"}]).input_tokens == 77
    assert [c.model_id for c in fake_bedrock.calls("CountTokens")] == ["anthropic.claude-sonnet-4-6"] * 2
