"""AnthropicUpstream's pools: requests fill one small pool before the next (see POOLS), so a quiet
proxy reuses one warm connection and a busy one keeps every httpcore pool short."""

from __future__ import annotations

import socket

import pytest

from app.errors import UpstreamUnavailable
from app.proxy.anthropic import POOL_IN_FLIGHT, AnthropicUpstream
from tests.fakes.anthropic_server import running_fake_anthropic

HEADERS = [("content-type", "application/json"), ("x-api-key", "sk-ant-test"), ("anthropic-version", "2023-06-01")]
BODY = b'{"model":"claude-sonnet-4-5-20250929","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}'


def connections(upstream: AnthropicUpstream) -> list[int]:
    return [len(client._transport._pool.connections) for client in upstream._clients]  # type: ignore[attr-defined]


async def test_sequential_requests_reuse_one_connection_of_the_first_pool() -> None:
    with running_fake_anthropic() as fake:
        upstream = AnthropicUpstream(fake.url, connect_timeout_s=5, read_timeout_s=5)
        try:
            for _ in range(5):
                async with upstream.send("/v1/messages", "", HEADERS, BODY) as response:
                    assert response.status_code == 200
                    await response.aread()
            assert len(upstream._clients) > 1
            assert connections(upstream)[0] == 1 and sum(connections(upstream)) == 1
            assert upstream._in_flight == [0] * len(upstream._clients)
        finally:
            await upstream.aclose()


def test_requests_in_flight_fill_a_pool_then_spread_evenly() -> None:
    upstream = AnthropicUpstream("http://127.0.0.1:9", connect_timeout_s=1, read_timeout_s=1, max_connections=40)
    pools = len(upstream._clients)
    picks = []
    for _ in range(pools * POOL_IN_FLIGHT + pools):
        pool = upstream._pick_pool()
        upstream._in_flight[pool] += 1
        picks.append(pool)
    assert picks[:POOL_IN_FLIGHT] == [0] * POOL_IN_FLIGHT
    assert picks[:pools * POOL_IN_FLIGHT] == sorted(picks[:pools * POOL_IN_FLIGHT])
    assert upstream._in_flight == [POOL_IN_FLIGHT + 1] * pools


def test_a_small_connection_limit_gets_fewer_pools_never_an_empty_one() -> None:
    for max_connections in (1, 3, 10, 1000):
        upstream = AnthropicUpstream("http://127.0.0.1:9", connect_timeout_s=1, read_timeout_s=1,
                                     max_connections=max_connections)
        limits = [c._transport._pool._max_connections for c in upstream._clients]  # type: ignore[attr-defined]
        assert min(limits) >= 1 and sum(limits) <= max_connections


async def test_a_failed_request_leaves_no_request_counted_in_flight() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    upstream = AnthropicUpstream(f"http://127.0.0.1:{port}", connect_timeout_s=1, read_timeout_s=1)
    try:
        with pytest.raises(UpstreamUnavailable):
            async with upstream.send("/v1/messages", "", HEADERS, BODY):
                pass
        assert sum(upstream._in_flight) == 0
    finally:
        await upstream.aclose()
