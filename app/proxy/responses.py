"""Building Starlette responses with raw (possibly repeated) headers, and error responses."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable

from starlette.responses import Response, StreamingResponse

from app.errors import ProxyError, error_json_bytes
from app.proxy.headers import PROVIDER_HEADER


def encode_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]


def raw_response(body: bytes, status_code: int, headers: Iterable[tuple[str, str]]) -> Response:
    """A response with exactly ``headers`` (plus the content-length Starlette computes)."""
    response = Response(content=body, status_code=status_code)
    response.raw_headers.extend(encode_headers(headers))
    return response


def streaming_response(body: AsyncIterator[bytes], status_code: int,
                       headers: Iterable[tuple[str, str]]) -> StreamingResponse:
    """A streamed response; bytes are sent as the iterator yields them."""
    response = StreamingResponse(body, status_code=status_code)
    response.raw_headers = encode_headers(headers)
    return response


def error_response(error: ProxyError, *, provider: str | None = None) -> Response:
    """Anthropic's error envelope with the error's status and headers (e.g. ``retry-after``)."""
    headers = [("content-type", "application/json"), *error.headers.items()]
    if provider:
        headers.append((PROVIDER_HEADER, provider))
    return raw_response(error_json_bytes(error.error_type, error.message), error.status_code, headers)
