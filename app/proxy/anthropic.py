"""AnthropicUpstream: the process's pooled client for Anthropic (the only Anthropic I/O).

aiohttp directly, on this one path (issue 16): the httpx API layered over aiohttp's pool
(``httpx-aiohttp``) cost ~165 µs of CPU per request at 50 in flight against ~110 µs for aiohttp
itself (URL parsing and header objects built two or three times per request, the ``AsyncByteStream``
chain per body chunk; bench/README.md, README "Design"). httpcore's own pool cost ~0.6 ms and did
O(connections^2) work per request (encode/httpcore#1035). The request goes out as given: header
lines as a list, so repeated ``anthropic-beta`` lines stay separate lines; the exact body bytes.
A test may pass an httpx ``transport`` (e.g. ``httpx.MockTransport``) instead; the answer has the
same shape either way (``AnthropicResponse``).

Errors are translated here, once: connect failures -> ``UpstreamUnavailable`` (502), timeouts before
the response head -> ``UpstreamTimeout`` (504), no free connection in the proxy's own pool within
``pool_timeout_s`` -> ``UpstreamPoolExhausted`` (503 ``overloaded_error`` with its class's
``retry-after``: a local limit, not Anthropic's failure). Body reads raise httpx's exception for
what happened (``aread``), or the ProxyError for it (``read_body``, ``sse_chunks``).
Source for the API itself: https://docs.anthropic.com/en/api/messages
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TypeVar, overload

import aiohttp
import httpx

from app.errors import ProxyError, UpstreamPoolExhausted, UpstreamTimeout, UpstreamUnavailable

READ_CHUNK_BYTES = 64 * 1024  # at most per chunk handed on; a read returns what has arrived
_T = TypeVar("_T")
_URL_CACHE_MAX = 64  # distinct (path, query) pairs kept; in practice 2 paths x a few queries


def as_httpx_error(exc: BaseException) -> httpx.TransportError | None:
    """An aiohttp error -> the httpx exception for what happened (most specific first); None for
    anything else (raised as it is)."""
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(str(exc))
    if isinstance(exc, aiohttp.ServerTimeoutError):  # SocketTimeoutError (sock_read) included
        return httpx.ReadTimeout(str(exc))
    if isinstance(exc, aiohttp.ClientConnectorError):  # refused, unreachable, DNS, TLS handshake
        return httpx.ConnectError(str(exc))
    if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ServerDisconnectedError):
        return httpx.RemoteProtocolError(str(exc))
    if isinstance(exc, aiohttp.ClientConnectionError | aiohttp.ClientResponseError):
        return httpx.ReadError(str(exc))
    return None


@contextmanager
def map_aiohttp_errors() -> Iterator[None]:
    """aiohttp errors -> the httpx exception for what happened (``as_httpx_error``)."""
    try:
        yield
    except aiohttp.ClientError as exc:
        if (mapped := as_httpx_error(exc)) is None:
            raise
        raise mapped from exc


class ResponseHeaders(Mapping[str, str]):
    """The response's header lines as received (``raw``: ``(name, value)`` bytes pairs, the
    client's own tuple: no copy is kept, an open stream holds them once), read as httpx's
    ``Headers`` reads them: names case-insensitive, ``multi_items()`` every line in order with
    lower-case names, ``[name]`` / ``get`` the values of repeated lines joined with ", ".
    Decoded as latin-1, so every byte survives the way back out (``responses.encode_headers``)."""

    __slots__ = ("_raw",)

    def __init__(self, raw: Sequence[tuple[bytes, bytes]]) -> None:
        self._raw = raw

    def multi_items(self) -> list[tuple[str, str]]:
        return [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in self._raw]

    def _values(self, key: str) -> list[bytes]:
        name = key.lower().encode("latin-1", "replace")
        return [v for k, v in self._raw if k.lower() == name]

    def __getitem__(self, key: str) -> str:
        values = self._values(key)
        if not values:
            raise KeyError(key)
        return b", ".join(values).decode("latin-1")

    @overload
    def get(self, key: str, /) -> str | None: ...
    @overload
    def get(self, key: str, /, default: str) -> str: ...
    @overload
    def get(self, key: str, /, default: _T) -> str | _T: ...

    def get(self, key: str, /, default: object = None) -> object:
        values = self._values(key)
        return b", ".join(values).decode("latin-1") if values else default

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and bool(self._values(key))

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys(k.decode("latin-1").lower() for k, _ in self._raw))

    def __len__(self) -> int:
        return len({k.lower() for k, _ in self._raw})


class AnthropicResponse:
    """Anthropic's answer with its head read and its body not yet read: ``status_code`` (int),
    ``headers`` (``ResponseHeaders``); the body through ``aread()`` or ``sse_chunks(response)`` (bytes
    as received: no decoding), released by ``aclose()`` (``AnthropicUpstream.send`` does that).
    Holds an aiohttp ``ClientResponse``, or an httpx ``Response`` from a test's transport."""

    __slots__ = ("_aiohttp", "_httpx", "headers", "status_code")

    def __init__(self, status_code: int, headers: ResponseHeaders, *,
                 aiohttp_response: aiohttp.ClientResponse | None = None,
                 httpx_response: httpx.Response | None = None) -> None:
        self.status_code, self.headers = status_code, headers
        self._aiohttp, self._httpx = aiohttp_response, httpx_response

    def at_eof(self) -> bool:
        """The whole body has been received and read (nothing left to read without waiting)."""
        return self._aiohttp is not None and self._aiohttp.content.at_eof()

    async def aread(self) -> bytes:
        """The whole body. Raises httpx.HTTPError (the kind of failure)."""
        if self._aiohttp is None:
            assert self._httpx is not None
            return await self._httpx.aread()
        with map_aiohttp_errors():
            return await self._aiohttp.read()

    async def aclose(self) -> None:
        if self._aiohttp is not None:
            self._aiohttp.release()
        elif self._httpx is not None:
            await self._httpx.aclose()


class AnthropicUpstream:
    """Sends requests to ``base_url`` over at most ``max_connections`` pooled connections.

    ``connect_timeout_s`` bounds TCP+TLS set-up; ``read_timeout_s`` bounds each wait for bytes
    (the first byte included), so a 10-minute stream is fine as long as bytes keep coming.
    ``pool_timeout_s`` bounds the wait for a free connection (the proxy's own slots, so a full
    pool is told apart from a slow connect). ``transport`` (tests) replaces aiohttp with an httpx
    transport. The aiohttp session is made on first use (it needs the running loop).
    """

    def __init__(self, base_url: str, *, connect_timeout_s: float, read_timeout_s: float,
                 max_connections: int = 1000, pool_timeout_s: float = 10.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._base_url = base_url.rstrip("/")
        self._max_connections = max(1, max_connections)
        self._timeout = aiohttp.ClientTimeout(total=None, connect=connect_timeout_s,
                                              sock_connect=connect_timeout_s, sock_read=read_timeout_s)
        self._session: aiohttp.ClientSession | None = None
        self._urls: dict[tuple[str, str], str] = {}
        self._client: httpx.AsyncClient | None = None
        self._transport = transport
        if transport is not None:
            timeout = httpx.Timeout(connect=connect_timeout_s, read=read_timeout_s, write=60.0, pool=pool_timeout_s)
            self._client = httpx.AsyncClient(base_url=base_url, timeout=timeout, follow_redirects=False,
                                             trust_env=False)
        self._slots = asyncio.Semaphore(self._max_connections)
        self._pool_timeout_s = pool_timeout_s
        self.in_flight = 0  # requests holding a connection slot

    def _new_session(self) -> aiohttp.ClientSession:
        # The proxy's slots bound the connections; aiohttp's own limit is the same number.
        # No cookie jar (one jar would be shared by all users' requests), no environment proxies.
        connector = aiohttp.TCPConnector(limit=self._max_connections, keepalive_timeout=30.0,
                                         ssl=httpx.create_ssl_context(trust_env=False))
        return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar(),
                                     auto_decompress=False, trust_env=False)

    def _url(self, path: str, query: str) -> str:
        key = (path, query)
        url = self._urls.get(key)
        if url is None:
            if len(self._urls) >= _URL_CACHE_MAX:
                self._urls.clear()
            url = self._urls[key] = f"{self._base_url}{path}?{query}" if query else f"{self._base_url}{path}"
        return url

    def send(self, path: str, query: str, headers: list[tuple[str, str]], body: bytes) -> _Exchange:
        """POST ``body`` (exact bytes) to ``path?query``; ``async with`` it for the response with its
        head read and its body not yet read (released, and the slot freed, on exit).
        Raises UpstreamUnavailable / UpstreamTimeout / UpstreamPoolExhausted on entry."""
        return _Exchange(self, (path, query, headers, body))

    async def _open(self, path: str, query: str, headers: list[tuple[str, str]], body: bytes) -> AnthropicResponse:
        """Send the request; raises httpx.TransportError (the kind of failure)."""
        if self._client is not None:
            assert self._transport is not None
            url = httpx.URL(path, query=query.encode()) if query else httpx.URL(path)
            request = self._client.build_request("POST", url, headers=headers, content=body)
            answer = await self._transport.handle_async_request(request)
            return AnthropicResponse(answer.status_code, ResponseHeaders(answer.headers.raw), httpx_response=answer)
        if self._session is None:
            self._session = self._new_session()
        try:
            # A list of lines, not a mapping: aiohttp writes each line as given, repeats included.
            response = await self._session.request(
                "POST", self._url(path, query), headers=headers, data=body or None, allow_redirects=False,
                auto_decompress=False, compress=False, timeout=self._timeout)
        except aiohttp.ClientError as exc:
            if (mapped := as_httpx_error(exc)) is None:
                raise
            raise mapped from exc
        return AnthropicResponse(response.status, ResponseHeaders(response.raw_headers), aiohttp_response=response)

    async def _acquire(self) -> None:
        """A connection slot; raises UpstreamPoolExhausted after ``pool_timeout_s`` without one."""
        if not self._slots.locked():
            await self._slots.acquire()  # free: returns without suspending
            return
        try:
            async with asyncio.timeout(self._pool_timeout_s):  # not wait_for: 3.11's can leak a slot
                await self._slots.acquire()
        except TimeoutError:
            raise UpstreamPoolExhausted(  # retry-after: the class's hint (app/errors.py)
                "all connections of this proxy to Anthropic are in use (PROXY_MAX_UPSTREAM_CONNECTIONS); "
                "retry shortly") from None

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
        if self._client is not None:
            await self._client.aclose()
        if self._transport is not None:
            await self._transport.aclose()


class _Exchange:
    """``AnthropicUpstream.send``'s context (a class, not a generator: per request, issue 16).
    Entry takes a connection slot and sends; exit releases the response and the slot."""

    __slots__ = ("_request", "_response", "_upstream")

    def __init__(self, upstream: AnthropicUpstream, request: tuple[str, str, list[tuple[str, str]], bytes]) -> None:
        self._upstream, self._request = upstream, request
        self._response: AnthropicResponse | None = None

    async def __aenter__(self) -> AnthropicResponse:
        upstream, request = self._upstream, self._request
        self._request = None  # type: ignore[assignment]  # this object lives as long as the response: not the body
        await upstream._acquire()
        upstream.in_flight += 1
        try:
            self._response = await upstream._open(*request)
        except BaseException as exc:
            upstream.in_flight -= 1
            upstream._slots.release()
            if isinstance(exc, httpx.TimeoutException):
                raise UpstreamTimeout(f"Anthropic did not answer in time ({type(exc).__name__})") from None
            if isinstance(exc, httpx.TransportError):
                raise UpstreamUnavailable(f"could not reach Anthropic ({type(exc).__name__})") from None
            raise
        return self._response

    async def __aexit__(self, *exc_info: object) -> None:
        upstream, response, self._response = self._upstream, self._response, None
        try:
            if response is not None:
                await response.aclose()
        finally:
            upstream.in_flight -= 1
            upstream._slots.release()


async def sse_chunks(response: AnthropicResponse) -> AsyncGenerator[bytes, None]:
    """The body as it arrives (the bytes as received, no decoding), for the Relay.
    Raises UpstreamTimeout / UpstreamUnavailable when the connection fails mid-response."""
    try:
        if response._aiohttp is None:  # a test's httpx transport
            assert response._httpx is not None
            async for chunk in response._httpx.aiter_raw():
                yield chunk
            return
        # aiohttp's reads inline (no second generator per chunk: the relay's per-event cost, issue 16)
        read = response._aiohttp.content.read
        with map_aiohttp_errors():
            while chunk := await read(READ_CHUNK_BYTES):
                yield chunk
    except httpx.HTTPError as exc:
        raise map_stream_error(exc) from None


async def read_body(response: AnthropicResponse) -> bytes:
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
