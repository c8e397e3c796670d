"""AnthropicUpstream: the process's pooled client for Anthropic (the only Anthropic I/O).

The httpx API over aiohttp's connection pool (``httpx-aiohttp``'s transport, the one the anthropic
SDK ships): httpcore's pool cost ~0.6 ms of CPU per request and did O(connections^2) work per
request start and end (encode/httpcore#1035); aiohttp's costs ~0.1 ms (bench/README.md).
``AiohttpTransport`` here fixes what the stock transport gets wrong for a byte-exact proxy: it
passes header lines as they are (the stock one merges repeated ``anthropic-beta`` lines into one),
and it maps aiohttp's errors by what happened (the stock one turns a refused connection into a
``ConnectTimeout``).

Errors are translated here, once: connect failures -> ``UpstreamUnavailable`` (502), timeouts before
the response head -> ``UpstreamTimeout`` (504), no free connection in the proxy's own pool within
``pool_timeout_s`` -> ``UpstreamPoolExhausted`` (503 ``overloaded_error``: a local limit, not
Anthropic's failure). Source for the API itself: https://docs.anthropic.com/en/api/messages
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport as _StockTransport

from app.errors import ProxyError, UpstreamPoolExhausted, UpstreamTimeout, UpstreamUnavailable

READ_CHUNK_BYTES = 64 * 1024  # at most per chunk handed on; a read returns what has arrived


@contextmanager
def map_aiohttp_errors() -> Iterator[None]:
    """aiohttp errors -> the httpx exception for what happened (most specific first)."""
    try:
        yield
    except aiohttp.ConnectionTimeoutError as exc:
        raise httpx.ConnectTimeout(str(exc)) from exc
    except aiohttp.SocketTimeoutError as exc:
        raise httpx.ReadTimeout(str(exc)) from exc
    except aiohttp.ServerTimeoutError as exc:
        raise httpx.ReadTimeout(str(exc)) from exc
    except aiohttp.ClientConnectorError as exc:  # refused, unreachable, DNS, TLS handshake
        raise httpx.ConnectError(str(exc)) from exc
    except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError) as exc:
        raise httpx.RemoteProtocolError(str(exc)) from exc
    except (aiohttp.ClientConnectionError, aiohttp.ClientResponseError) as exc:
        raise httpx.ReadError(str(exc)) from exc


class _ResponseStream(httpx.AsyncByteStream):
    """The aiohttp response body as it arrives (no re-chunking, no decoding)."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        content = self._response.content
        with map_aiohttp_errors():
            while chunk := await content.read(READ_CHUNK_BYTES):
                yield chunk

    async def aclose(self) -> None:
        self._response.release()


class AiohttpTransport(_StockTransport):
    """``httpx_aiohttp.AiohttpTransport`` with header lines kept as sent and errors mapped by kind.

    Timeouts: ``connect`` bounds TCP+TLS set-up, ``read`` each wait for bytes (the response head
    included). The connection limit is ``limits.max_connections``; ``AnthropicUpstream`` waits for a
    slot itself (so a full pool is told apart from a slow connect).
    """

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not isinstance(self.client, aiohttp.ClientSession):
            self.client = self.get_client()
        timeout = request.extensions.get("timeout", {})
        # A list of lines, not a mapping: aiohttp writes each line as given, repeats included.
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw]
        with map_aiohttp_errors():
            response = await self.client.request(
                request.method, str(request.url), headers=headers, data=request.content or None,
                allow_redirects=False, auto_decompress=False, compress=False,
                timeout=aiohttp.ClientTimeout(total=None, connect=timeout.get("connect"),
                                              sock_connect=timeout.get("connect"),
                                              sock_read=timeout.get("read")))
        # No ``request=``: the response outlives the request (a stream may stay open for minutes)
        # and must not keep its body alive.
        return httpx.Response(status_code=response.status, headers=response.raw_headers,
                              stream=_ResponseStream(response),
                              extensions={"http_version": b"HTTP/1.1",
                                          "reason_phrase": (response.reason or "").encode()})


class AnthropicUpstream:
    """Sends requests to ``base_url`` over at most ``max_connections`` pooled connections.

    ``connect_timeout_s`` bounds TCP+TLS set-up; ``read_timeout_s`` bounds each wait for bytes
    (the first byte included), so a 10-minute stream is fine as long as bytes keep coming.
    ``pool_timeout_s`` bounds the wait for a free connection. ``transport`` (tests) replaces aiohttp.
    """

    def __init__(self, base_url: str, *, connect_timeout_s: float, read_timeout_s: float,
                 max_connections: int = 1000, pool_timeout_s: float = 10.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections,
                              keepalive_expiry=30.0)
        timeout = httpx.Timeout(connect=connect_timeout_s, read=read_timeout_s, write=60.0, pool=pool_timeout_s)
        self._client = httpx.AsyncClient(base_url=base_url, timeout=timeout, follow_redirects=False, trust_env=False)
        # Requests go to the transport straight from ``build_request`` (the client's default headers
        # and timeouts): the client's send adds redirects, auth and a cookie jar the proxy must not
        # have (one jar for all users' requests), and ~20% of the CPU of an upstream request.
        self._transport = transport or AiohttpTransport(verify=httpx.create_ssl_context(trust_env=False),
                                                        trust_env=False, limits=limits)
        self._slots = asyncio.Semaphore(max(1, max_connections))
        self._pool_timeout_s = pool_timeout_s
        self.in_flight = 0  # requests holding a connection slot

    @asynccontextmanager
    async def send(self, path: str, query: str, headers: list[tuple[str, str]],
                   body: bytes) -> AsyncIterator[httpx.Response]:
        """POST ``body`` (exact bytes) to ``path?query``; yields the response with its head read
        and its body not yet read. Raises UpstreamUnavailable / UpstreamTimeout / UpstreamPoolExhausted."""
        url = httpx.URL(path, query=query.encode()) if query else httpx.URL(path)
        client = self._client
        request = client.build_request("POST", url, headers=headers, content=body)
        await self._acquire()
        self.in_flight += 1
        try:
            try:
                response = await self._transport.handle_async_request(request)
            except httpx.TimeoutException as exc:
                raise UpstreamTimeout(f"Anthropic did not answer in time ({type(exc).__name__})") from None
            except httpx.TransportError as exc:
                raise UpstreamUnavailable(f"could not reach Anthropic ({type(exc).__name__})") from None
            del request, body  # this frame lives as long as the response: do not keep the body
            try:
                yield response
            finally:
                await response.aclose()
        finally:
            self.in_flight -= 1
            self._slots.release()

    async def _acquire(self) -> None:
        """A connection slot; raises UpstreamPoolExhausted after ``pool_timeout_s`` without one."""
        if not self._slots.locked():
            await self._slots.acquire()  # free: returns without suspending
            return
        try:
            async with asyncio.timeout(self._pool_timeout_s):  # not wait_for: 3.11's can leak a slot
                await self._slots.acquire()
        except TimeoutError:
            raise UpstreamPoolExhausted(
                "all connections of this proxy to Anthropic are in use (PROXY_MAX_UPSTREAM_CONNECTIONS); "
                "retry shortly", headers={"retry-after": "1"}) from None

    async def aclose(self) -> None:
        await self._transport.aclose()


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
