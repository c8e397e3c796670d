"""Forwarding a Messages API call: Anthropic first; the answer relayed byte for byte; usage recorded.

Flow for one request (``Forwarder.handle``):
1. send the exact body bytes to Anthropic with the client's own credential;
2. a JSON answer is read whole and returned with the upstream status and headers;
3. an SSE answer is relayed chunk by chunk as it arrives, while ``UsageTap`` reads the usage;
   a failure after the first byte becomes an SSE ``error`` event and the stream ends cleanly;
4. one usage event and one log line are produced, whatever happened (client gone included).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Protocol

import anyio
import httpx
from starlette.responses import Response

from app.errors import ProxyError, sse_error_event
from app.proxy.anthropic import AnthropicUpstream, map_stream_error
from app.proxy.headers import client_response_headers, require_client_credential, upstream_request_headers
from app.proxy.request import ProxyRequest
from app.proxy.responses import raw_response, streaming_response
from app.proxy.sse import UsageTap, usage_from_message
from app.usage.events import UsageEvent
from app.usage.recorder import UsageRecorder

log = logging.getLogger("claude_code_proxy.requests")

class Admission(Protocol):
    """Checked before any upstream call (quotas, rate limits); raises ProxyError (e.g. RateLimited)."""

    async def check(self, preq: ProxyRequest) -> None: ...


CLIENT_CLOSED = 499  # nginx's convention: the client went away before the answer finished


class Forwarder:
    """Serves proxy requests. One instance per app, created in the lifespan."""

    def __init__(self, upstream: AnthropicUpstream, recorder: UsageRecorder, *,
                 admission: Admission | None = None) -> None:
        self._upstream = upstream
        self._recorder = recorder
        self._admission = admission

    async def handle(self, preq: ProxyRequest) -> Response:
        """Forward ``preq``; returns the client's response. Raises ProxyError before any byte is sent."""
        try:
            if self._admission is not None:
                await self._admission.check(preq)
            require_client_credential(preq.headers)
            return await self._via_anthropic(preq)
        except ProxyError as exc:
            self.finish(preq, provider="anthropic", status=exc.status_code, error_type=exc.error_type)
            raise

    async def _via_anthropic(self, preq: ProxyRequest) -> Response:
        stack = AsyncExitStack()
        upstream = await stack.enter_async_context(self._upstream.send(
            preq.path, preq.query, upstream_request_headers(preq.raw_headers), preq.body))
        headers = client_response_headers(upstream.headers.multi_items(), "anthropic")
        if upstream.headers.get("content-type", "").startswith("text/event-stream"):
            return streaming_response(self._relay(preq, upstream, stack), upstream.status_code, headers)
        async with stack:
            try:
                body = await upstream.aread()
            except httpx.HTTPError as exc:
                raise map_stream_error(exc) from None
        usage: dict[str, int] = {}
        if upstream.status_code == 200 and preq.endpoint == "messages":
            usage = _usage_from_json(body)
        self.finish(preq, provider="anthropic", status=upstream.status_code, usage=usage,
                    request_id=upstream.headers.get("request-id"))
        return raw_response(body, upstream.status_code, headers)

    async def _relay(self, preq: ProxyRequest, upstream: httpx.Response,
                     stack: AsyncExitStack) -> AsyncIterator[bytes]:
        tap = UsageTap()
        status, error_type, ttft_ms = upstream.status_code, None, None
        try:
            async for chunk in upstream.aiter_raw():
                if ttft_ms is None:
                    ttft_ms = (time.perf_counter() - preq.started) * 1000
                tap.feed(chunk)
                yield chunk
            if not tap.complete and tap.error_type is None:
                # Upstream closed without message_stop: say so rather than end silently.
                status, error_type = 502, "api_error"
                yield sse_error_event("api_error", "the upstream stream ended before message_stop")
        except httpx.HTTPError as exc:
            error = map_stream_error(exc)
            status, error_type = error.status_code, error.error_type
            yield sse_error_event(error.error_type, error.message)
        except BaseException:
            # Client disconnected (cancellation) or server shutdown: record what we have.
            status, error_type = CLIENT_CLOSED, "client_closed"
            raise
        finally:
            self.finish(preq, provider="anthropic", status=status if tap.error_type is None else 500,
                        usage=tap.usage, error_type=error_type or tap.error_type, streamed=True,
                        ttft_ms=ttft_ms, request_id=upstream.headers.get("request-id"))
            with anyio.CancelScope(shield=True):
                await stack.aclose()

    def finish(self, preq: ProxyRequest, *, provider: str, status: int, usage: dict[str, int] | None = None,
               error_type: str | None = None, streamed: bool = False, ttft_ms: float | None = None,
               request_id: str | None = None, provider_model: str | None = None,
               fallback_reason: str | None = None) -> None:
        """Record the usage event and write the request's log line (synchronous: safe in cleanup)."""
        usage = usage or {}
        latency_ms = (time.perf_counter() - preq.started) * 1000
        event = UsageEvent(
            user_id=preq.principal.user_id, access_key_id=preq.principal.access_key_id,
            provider=provider, model=preq.model, provider_model=provider_model or preq.model,  # type: ignore[arg-type]
            endpoint=preq.endpoint, status=status, streamed=streamed or preq.stream,
            latency_ms=round(latency_ms, 3), ttft_ms=None if ttft_ms is None else round(ttft_ms, 3),
            fallback_reason=fallback_reason, request_id=request_id,
            input_tokens=usage.get("input_tokens", 0), output_tokens=usage.get("output_tokens", 0),
            cache_creation_input_tokens=usage.get("cache_creation_input_tokens", 0),
            cache_creation_1h_input_tokens=usage.get("cache_creation_1h_input_tokens", 0),
            cache_read_input_tokens=usage.get("cache_read_input_tokens", 0))
        self._recorder.record(event)
        log.info("request", extra={
            "proxy_request_id": preq.proxy_request_id, "request_id": request_id,
            "user_id": preq.principal.user_id, "access_key_id": preq.principal.access_key_id,
            "endpoint": preq.endpoint, "model": preq.model, "provider": provider,
            "provider_model": event.provider_model, "status": status, "error_type": error_type,
            "stream": event.streamed, "fallback_reason": fallback_reason,
            "input_tokens": event.input_tokens, "output_tokens": event.output_tokens,
            "cache_creation_input_tokens": event.cache_creation_input_tokens,
            "cache_read_input_tokens": event.cache_read_input_tokens,
            "latency_ms": event.latency_ms, "ttft_ms": event.ttft_ms})


def _usage_from_json(body: bytes) -> dict[str, int]:
    import json

    try:
        return usage_from_message(json.loads(body).get("usage"))
    except (ValueError, AttributeError):
        return {}
