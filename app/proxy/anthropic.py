"""AnthropicUpstream: the one pooled httpx client for the process (the only Anthropic I/O).

httpx errors are translated here, once: connect failures -> ``UpstreamUnavailable`` (502),
timeouts before the response head -> ``UpstreamTimeout`` (504). Source for the API itself:
https://docs.anthropic.com/en/api/messages
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from app.errors import ProxyError, UpstreamTimeout, UpstreamUnavailable


class AnthropicUpstream:
    """Sends requests to ``base_url`` with a shared connection pool.

    ``connect_timeout_s`` bounds TCP+TLS set-up; ``read_timeout_s`` bounds each wait for bytes
    (the first byte included), so a 10-minute stream is fine as long as bytes keep coming.
    """

    def __init__(self, base_url: str, *, connect_timeout_s: float, read_timeout_s: float,
                 max_connections: int = 1000, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._client = httpx.AsyncClient(
            base_url=base_url,
            timeout=httpx.Timeout(connect=connect_timeout_s, read=read_timeout_s, write=60.0, pool=10.0),
            limits=httpx.Limits(max_connections=max_connections,
                                max_keepalive_connections=min(max_connections, 200),
                                keepalive_expiry=30.0),
            follow_redirects=False,
            trust_env=False,
            transport=transport,
        )

    @asynccontextmanager
    async def send(self, path: str, query: str, headers: list[tuple[str, str]],
                   body: bytes) -> AsyncIterator[httpx.Response]:
        """POST ``body`` (exact bytes) to ``path?query``; yields the response with its head read
        and its body not yet read. Raises UpstreamUnavailable / UpstreamTimeout."""
        url = httpx.URL(path, query=query.encode()) if query else httpx.URL(path)
        request = self._client.build_request("POST", url, headers=headers, content=body)
        try:
            response = await self._client.send(request, stream=True)
        except httpx.TimeoutException as exc:
            raise UpstreamTimeout(f"Anthropic did not answer in time ({type(exc).__name__})") from None
        except httpx.TransportError as exc:
            raise UpstreamUnavailable(f"could not reach Anthropic ({type(exc).__name__})") from None
        try:
            yield response
        finally:
            await response.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()


def map_stream_error(exc: Exception) -> ProxyError:
    """An httpx error raised while reading a response body -> the matching ProxyError."""
    if isinstance(exc, httpx.TimeoutException):
        return UpstreamTimeout("Anthropic stopped sending data (read timeout)")
    return UpstreamUnavailable(f"the connection to Anthropic failed mid-response ({type(exc).__name__})")
