"""AnthropicUpstream: the process's pooled httpx clients for Anthropic (the only Anthropic I/O).

httpx errors are translated here, once: connect failures -> ``UpstreamUnavailable`` (502),
timeouts before the response head -> ``UpstreamTimeout`` (504), no free connection in the proxy's
own pool within ``pool_timeout_s`` (httpx ``PoolTimeout``) -> ``UpstreamPoolExhausted`` (503
``overloaded_error``: a local limit, not Anthropic's failure). Source for the API itself:
https://docs.anthropic.com/en/api/messages
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager

import httpx

from app.errors import ProxyError, UpstreamPoolExhausted, UpstreamTimeout, UpstreamUnavailable


# httpcore 1.0.x's pool does O(connections^2) work on every request start and end (each idle
# connection re-counts all of them, and polls its socket): with 50 requests in flight on one pool
# an upstream request cost ~2.3x the CPU it costs alone (bench/upstream_client.py). So requests
# fill small pools one after another: at low load only the first pool is used (its connections stay
# warm), under load each pool holds a few connections and every scan stays short.
# Source: encode/httpcore#1035 (that function, and the keep-alive bug below), encode/httpx#3215.
POOLS = 64  # at most; each gets max_connections // POOLS connections
POOL_IN_FLIGHT = 4  # requests in flight on a pool before the next one is used


class AnthropicUpstream:
    """Sends requests to ``base_url`` through up to ``pools`` connection pools (see ``POOLS``).

    ``connect_timeout_s`` bounds TCP+TLS set-up; ``read_timeout_s`` bounds each wait for bytes
    (the first byte included), so a 10-minute stream is fine as long as bytes keep coming.
    ``max_connections`` is the total over all pools (rounded down to a multiple of their number);
    ``pool_timeout_s`` bounds the wait for a free one. A given ``transport`` (tests) gets one pool.
    """

    def __init__(self, base_url: str, *, connect_timeout_s: float, read_timeout_s: float,
                 max_connections: int = 1000, pool_timeout_s: float = 10.0,
                 transport: httpx.AsyncBaseTransport | None = None, pools: int = POOLS) -> None:
        pools = 1 if transport is not None else max(1, min(pools, max_connections // POOL_IN_FLIGHT))
        per_pool = max_connections // pools
        self._fill = min(POOL_IN_FLIGHT, per_pool)
        verify = httpx.create_ssl_context(trust_env=False)  # one CA bundle load (~50 ms), not one per pool
        self._clients = [httpx.AsyncClient(
            base_url=base_url,
            timeout=httpx.Timeout(connect=connect_timeout_s, read=read_timeout_s, write=60.0,
                                  pool=pool_timeout_s),
            # keep-alive cap = pool size: httpcore 1.0.x compares the cap with *all* connections,
            # so a lower cap closes every connection that goes idle once the pool is that busy.
            limits=httpx.Limits(max_connections=per_pool, max_keepalive_connections=per_pool, keepalive_expiry=30.0),
            follow_redirects=False,
            trust_env=False,
            verify=verify,
            transport=transport,
        ) for _ in range(pools)]
        self._in_flight = [0] * pools

    @asynccontextmanager
    async def send(self, path: str, query: str, headers: list[tuple[str, str]],
                   body: bytes) -> AsyncIterator[httpx.Response]:
        """POST ``body`` (exact bytes) to ``path?query``; yields the response with its head read
        and its body not yet read. Raises UpstreamUnavailable / UpstreamTimeout / UpstreamPoolExhausted."""
        url = httpx.URL(path, query=query.encode()) if query else httpx.URL(path)
        pool = self._pick_pool()
        client = self._clients[pool]
        request = client.build_request("POST", url, headers=headers, content=body)
        self._in_flight[pool] += 1
        try:
            try:
                response = await client.send(request, stream=True)
            except httpx.PoolTimeout:
                raise UpstreamPoolExhausted(
                    "all connections of this proxy to Anthropic are in use (PROXY_MAX_UPSTREAM_CONNECTIONS); "
                    "retry shortly", headers={"retry-after": "1"}) from None
            except httpx.TimeoutException as exc:
                raise UpstreamTimeout(f"Anthropic did not answer in time ({type(exc).__name__})") from None
            except httpx.TransportError as exc:
                raise UpstreamUnavailable(f"could not reach Anthropic ({type(exc).__name__})") from None
            try:
                yield response
            finally:
                await response.aclose()
        finally:
            self._in_flight[pool] -= 1

    def _pick_pool(self) -> int:
        """The first pool with fewer than POOL_IN_FLIGHT requests in flight, else the least busy."""
        in_flight = self._in_flight
        for pool, count in enumerate(in_flight):
            if count < self._fill:
                return pool
        return in_flight.index(min(in_flight))

    async def aclose(self) -> None:
        for client in self._clients:
            await client.aclose()


async def sse_chunks(response: httpx.Response) -> AsyncGenerator[bytes, None]:
    """The body as it arrives (``aiter_raw()``: the bytes as received, no decoding), for the Relay.
    Raises UpstreamTimeout / UpstreamUnavailable when the connection fails mid-response."""
    try:
        async for chunk in response.aiter_raw():
            yield chunk
    except httpx.HTTPError as exc:
        raise map_stream_error(exc) from None


async def read_body(response: httpx.Response) -> bytes:
    """The whole body. Raises UpstreamTimeout / UpstreamUnavailable (see ``map_stream_error``)."""
    try:
        return await response.aread()
    except httpx.HTTPError as exc:
        raise map_stream_error(exc) from None


def map_stream_error(exc: Exception) -> ProxyError:
    """An httpx error raised while reading a response body -> the matching ProxyError."""
    if isinstance(exc, httpx.TimeoutException):
        return UpstreamTimeout("Anthropic stopped sending data (read timeout)")
    return UpstreamUnavailable(f"the connection to Anthropic failed mid-response ({type(exc).__name__})")
