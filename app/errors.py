"""Proxy errors rendered as Anthropic's error envelope.

Hierarchy (status, Anthropic ``error.type``), after https://docs.anthropic.com/en/api/errors::

    ProxyError                                          retry hint (headers)
    ├── InvalidRequest        400 invalid_request_error  x-should-retry: false
    ├── AuthenticationFailed  401 authentication_error   x-should-retry: false
    ├── PermissionDenied      403 permission_error       x-should-retry: false
    ├── NotFound              404 not_found_error        x-should-retry: false
    ├── RequestTooLarge       413 request_too_large      x-should-retry: false
    ├── RateLimited           429 rate_limit_error       retry-after (default 10 s)
    ├── ApiError              500 api_error
    ├── UpstreamUnavailable   502 api_error              (connect error / bad gateway)
    ├── ServiceUnavailable    503 overloaded_error       retry-after (default 5 s; the proxy's store is down)
    ├── UpstreamTimeout       504 timeout_error
    ├── UpstreamPoolExhausted 503 overloaded_error       retry-after (default 1 s; the proxy's own connection cap)
    └── Overloaded            529 overloaded_error       retry-after (default 5 s)

JSON callers get ``{"type": "error", "error": {"type": ..., "message": ...}}`` with the status;
after the first SSE byte the same body goes out as an ``event: error`` frame.

Retry hints, read by Anthropic's SDKs and so by Claude Code (which retries 408/409/429/5xx up to
ten times, honouring ``retry-after``, unless ``x-should-retry`` says otherwise):

- ``should_retry`` (class attribute, or the ``should_retry=`` argument for one error): ``False``
  sends ``x-should-retry: false``, so the client fails at once instead of retrying a request that
  cannot succeed (a bad key, a model not allowed, a spent cap); ``None`` sends no header.
  A new refusal of that kind subclasses with ``should_retry = False``.
- ``retry_after_s`` (class default ``default_retry_after_s``, or the argument): rendered once,
  here, as ``retry-after`` in whole seconds (rounded up, at least 1), the form Claude Code reads.
Source: the gateway protocol in Claude Code's own reference ("Errors" and "Usage-limit headers"):
https://code.claude.com/docs/en/llm-gateway-protocol
"""

from __future__ import annotations

import json
import math
from typing import Any


_UNSET: Any = object()


def retry_after_value(seconds: float) -> str:
    """``retry-after`` in whole seconds: rounded up, at least 1 (``2.1`` -> ``"3"``)."""
    return str(max(1, math.ceil(seconds))) if math.isfinite(seconds) else "1"


class ProxyError(Exception):
    """Base class: ``status_code`` (HTTP), ``error_type`` (Anthropic's ``error.type``) and the
    retry hints (see the module doc): ``should_retry`` and ``retry_after_s`` (seconds)."""

    status_code: int = 500
    error_type: str = "api_error"
    should_retry: bool | None = None
    default_retry_after_s: float | None = None

    def __init__(self, message: str, *, headers: dict[str, str] | None = None,
                 retry_after_s: float | None = _UNSET, should_retry: bool | None = _UNSET) -> None:
        super().__init__(message)
        self.message = message
        self.headers: dict[str, str] = dict(headers or {})
        if should_retry is not _UNSET:
            self.should_retry = should_retry
        self.retry_after_s: float | None = (self.default_retry_after_s if retry_after_s is _UNSET
                                            else retry_after_s)
        if self.retry_after_s is not None:
            self.headers.setdefault("retry-after", retry_after_value(self.retry_after_s))
        if self.should_retry is not None:
            self.headers.setdefault("x-should-retry", "true" if self.should_retry else "false")

    def body(self) -> dict[str, Any]:
        return error_body(self.error_type, self.message)


class InvalidRequest(ProxyError):
    status_code, error_type = 400, "invalid_request_error"
    should_retry = False


class AuthenticationFailed(ProxyError):
    status_code, error_type = 401, "authentication_error"
    should_retry = False


class PermissionDenied(ProxyError):
    status_code, error_type = 403, "permission_error"
    should_retry = False


class NotFound(ProxyError):
    status_code, error_type = 404, "not_found_error"
    should_retry = False


class RequestTooLarge(ProxyError):
    status_code, error_type = 413, "request_too_large"
    should_retry = False


class RateLimited(ProxyError):
    """Too many requests now; the client retries after ``retry-after``. A limit a retry cannot
    pass soon (a daily or monthly cap) is raised with ``should_retry=False``."""

    status_code, error_type = 429, "rate_limit_error"
    default_retry_after_s = 10.0


class ApiError(ProxyError):
    status_code, error_type = 500, "api_error"


class UpstreamUnavailable(ProxyError):
    status_code, error_type = 502, "api_error"


class ServiceUnavailable(ProxyError):
    """The proxy cannot answer now (its store failed); the client should retry after ``retry-after``.

    Anthropic's SDKs (and so Claude Code) retry 503 with backoff and honour ``retry-after``."""

    status_code, error_type = 503, "overloaded_error"
    default_retry_after_s = 5.0


class UpstreamTimeout(ProxyError):
    status_code, error_type = 504, "timeout_error"


class UpstreamPoolExhausted(ProxyError):
    """Every connection this replica may open to an upstream is in use and none freed up in time.
    A local limit, not the provider's failure: never counted against the client's credential."""

    status_code, error_type = 503, "overloaded_error"
    default_retry_after_s = 1.0


class Overloaded(ProxyError):
    status_code, error_type = 529, "overloaded_error"
    default_retry_after_s = 5.0


def error_body(error_type: str, message: str) -> dict[str, Any]:
    """Anthropic's error envelope as a dict."""
    return {"type": "error", "error": {"type": error_type, "message": message}}


def error_json_bytes(error_type: str, message: str) -> bytes:
    """The envelope as compact JSON bytes (for a ``Response`` body)."""
    return json.dumps(error_body(error_type, message), separators=(",", ":")).encode()


def sse_error_event(error_type: str, message: str) -> bytes:
    """The envelope as one SSE frame: ``event: error`` + ``data: {...}`` (Anthropic's stream grammar)."""
    return b"event: error\ndata: " + error_json_bytes(error_type, message) + b"\n\n"
