"""Proxy errors rendered as Anthropic's error envelope.

Hierarchy (status, Anthropic ``error.type``), after https://docs.anthropic.com/en/api/errors::

    ProxyError
    ├── InvalidRequest        400 invalid_request_error
    ├── AuthenticationFailed  401 authentication_error
    ├── PermissionDenied      403 permission_error
    ├── NotFound              404 not_found_error
    ├── RequestTooLarge       413 request_too_large
    ├── RateLimited           429 rate_limit_error   (carries retry_after_s)
    ├── ApiError              500 api_error
    ├── UpstreamUnavailable   502 api_error          (connect error / bad gateway)
    ├── ServiceUnavailable    503 overloaded_error   (the proxy's own store is down; carries retry_after_s)
    ├── UpstreamTimeout       504 timeout_error
    └── Overloaded            529 overloaded_error

JSON callers get ``{"type": "error", "error": {"type": ..., "message": ...}}`` with the status;
after the first SSE byte the same body goes out as an ``event: error`` frame.
"""

from __future__ import annotations

import json
from typing import Any


class ProxyError(Exception):
    """Base class: ``status_code`` (HTTP) and ``error_type`` (Anthropic's ``error.type``)."""

    status_code: int = 500
    error_type: str = "api_error"

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers: dict[str, str] = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return error_body(self.error_type, self.message)


class InvalidRequest(ProxyError):
    status_code, error_type = 400, "invalid_request_error"


class AuthenticationFailed(ProxyError):
    status_code, error_type = 401, "authentication_error"


class PermissionDenied(ProxyError):
    status_code, error_type = 403, "permission_error"


class NotFound(ProxyError):
    status_code, error_type = 404, "not_found_error"


class RequestTooLarge(ProxyError):
    status_code, error_type = 413, "request_too_large"


class RateLimited(ProxyError):
    status_code, error_type = 429, "rate_limit_error"

    def __init__(self, message: str, *, retry_after_s: float | None = None,
                 headers: dict[str, str] | None = None) -> None:
        merged = dict(headers or {})
        if retry_after_s is not None:
            merged.setdefault("retry-after", str(max(1, int(retry_after_s + 0.999))))
        super().__init__(message, headers=merged)
        self.retry_after_s = retry_after_s


class ApiError(ProxyError):
    status_code, error_type = 500, "api_error"


class UpstreamUnavailable(ProxyError):
    status_code, error_type = 502, "api_error"


class ServiceUnavailable(ProxyError):
    """The proxy cannot answer now (its store failed); the client should retry after ``retry-after``.

    Anthropic's SDKs (and so Claude Code) retry 503 with backoff and honour ``retry-after``."""

    status_code, error_type = 503, "overloaded_error"

    def __init__(self, message: str, *, retry_after_s: float | None = None,
                 headers: dict[str, str] | None = None) -> None:
        merged = dict(headers or {})
        if retry_after_s is not None:
            merged.setdefault("retry-after", str(max(1, int(retry_after_s + 0.999))))
        super().__init__(message, headers=merged)
        self.retry_after_s = retry_after_s


class UpstreamTimeout(ProxyError):
    status_code, error_type = 504, "timeout_error"


class Overloaded(ProxyError):
    status_code, error_type = 529, "overloaded_error"


def error_body(error_type: str, message: str) -> dict[str, Any]:
    """Anthropic's error envelope as a dict."""
    return {"type": "error", "error": {"type": error_type, "message": message}}


def error_json_bytes(error_type: str, message: str) -> bytes:
    """The envelope as compact JSON bytes (for a ``Response`` body)."""
    return json.dumps(error_body(error_type, message), separators=(",", ":")).encode()


def sse_error_event(error_type: str, message: str) -> bytes:
    """The envelope as one SSE frame: ``event: error`` + ``data: {...}`` (Anthropic's stream grammar)."""
    return b"event: error\ndata: " + error_json_bytes(error_type, message) + b"\n\n"
