"""AnthropicUpstream over aiohttp (httpx-aiohttp): connections reused, header lines kept as sent,
and each failure mapped to what happened (refused -> 502, no answer -> 504, own pool full -> 503)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest

from app.errors import UpstreamPoolExhausted, UpstreamTimeout, UpstreamUnavailable
from app.proxy.anthropic import AnthropicUpstream, ResponseHeaders
from tests.fakes.anthropic_server import running_fake_anthropic

HEADERS = [("content-type", "application/json"), ("x-api-key", "sk-ant-test"), ("anthropic-version", "2023-06-01")]
BODY = b'{"model":"claude-sonnet-4-5-20250929","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}'
ANSWER = b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}'


@asynccontextmanager
async def raw_server(answer: bytes | None) -> AsyncIterator[tuple[str, list[int]]]:
    """A keep-alive HTTP/1.1 server answering each request with ``answer`` (None: never answers);
    yields its URL and a one-item list counting the connections accepted."""
    accepted = [0]

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted[0] += 1
        try:
            while (head := await reader.readuntil(b"\r\n\r\n")):
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                await reader.readexactly(length)
                if answer is None:
                    await asyncio.sleep(3600)
                writer.write(answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", accepted
    finally:
        server.close()


def closed_port() -> int:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_sequential_requests_reuse_one_connection() -> None:
    async with raw_server(ANSWER) as (url, accepted):
        upstream = AnthropicUpstream(url, connect_timeout_s=5, read_timeout_s=5)
        try:
            for _ in range(5):
                async with upstream.send("/v1/messages", "", HEADERS, BODY) as response:
                    assert response.status_code == 200
                    assert await response.aread() == b"{}"
            assert accepted[0] == 1
            assert upstream.in_flight == 0
        finally:
            await upstream.aclose()


async def test_repeated_header_lines_arrive_as_separate_lines() -> None:
    with running_fake_anthropic() as fake:
        upstream = AnthropicUpstream(fake.url, connect_timeout_s=5, read_timeout_s=5)
        try:
            headers = [*HEADERS, ("anthropic-beta", "a-1,b-2"), ("anthropic-beta", "c-3")]
            async with upstream.send("/v1/messages", "beta=true", headers, BODY) as response:
                assert response.status_code == 200
                await response.aread()
        finally:
            await upstream.aclose()
        received = fake.messages_requests()[-1]
        assert [v for k, v in received.headers if k == "anthropic-beta"] == ["a-1,b-2", "c-3"]
        assert received.query == "beta=true" and received.body == BODY


async def test_a_refused_connection_is_unavailable_not_a_timeout_and_frees_its_slot() -> None:
    upstream = AnthropicUpstream(f"http://127.0.0.1:{closed_port()}", connect_timeout_s=1, read_timeout_s=1,
                                 max_connections=1)
    try:
        for _ in range(2):  # the slot of the first failure is free again
            with pytest.raises(UpstreamUnavailable):
                async with upstream.send("/v1/messages", "", HEADERS, BODY):
                    pass
        assert upstream.in_flight == 0
    finally:
        await upstream.aclose()


async def test_no_response_head_within_the_read_timeout_is_a_timeout() -> None:
    async with raw_server(None) as (url, _):
        upstream = AnthropicUpstream(url, connect_timeout_s=1, read_timeout_s=0.2)
        try:
            with pytest.raises(UpstreamTimeout):
                async with upstream.send("/v1/messages", "", HEADERS, BODY):
                    pass
        finally:
            await upstream.aclose()


async def test_a_full_pool_is_pool_exhausted_after_the_pool_timeout() -> None:
    async with raw_server(ANSWER) as (url, _):
        upstream = AnthropicUpstream(url, connect_timeout_s=1, read_timeout_s=1, max_connections=1,
                                     pool_timeout_s=0.05)
        try:
            async with upstream.send("/v1/messages", "", HEADERS, BODY) as held:
                assert held.status_code == 200
                with pytest.raises(UpstreamPoolExhausted) as refused:
                    async with upstream.send("/v1/messages", "", HEADERS, BODY):
                        pass
                assert refused.value.headers == {"retry-after": "1"}
            async with upstream.send("/v1/messages", "", HEADERS, BODY) as again:  # released: usable again
                assert again.status_code == 200
        finally:
            await upstream.aclose()


def test_response_headers_read_as_httpx_headers_read_them() -> None:
    raw = ((b"Content-Type", b"text/event-stream"), (b"anthropic-ratelimit-tokens-remaining", b"0"),
           (b"X-Thing", b"a"), (b"x-thing", b"b"), (b"x-latin", "caf\u00e9".encode("latin-1")))
    ours = ResponseHeaders(raw)
    theirs = httpx.Headers(list(raw))
    assert ours.multi_items() == theirs.multi_items()
    for name in ("content-type", "CONTENT-TYPE", "x-thing", "X-Latin", "missing"):
        assert ours.get(name) == theirs.get(name)
        assert (name in ours) == (name in theirs)
    assert ours.get("missing", "") == ""
    assert ours["x-thing"] == "a, b" and list(ours) == list(theirs.keys()) and len(ours) == len(theirs.keys()) == 4
    with pytest.raises(KeyError):
        ours["missing"]
