"""Forwarding a Messages API call: Anthropic first, Bedrock when Anthropic cannot serve it.

Flow for one request (``Forwarder.handle``):
1. admission (quotas) -> the access key's ``fallback_policy`` (``anthropic_first`` by default,
   ``bedrock_only``, ``anthropic_only``; ``PROXY_FORCE_FALLBACK`` sends all to Bedrock);
2. a running cooldown for the client's credential -> straight to Bedrock;
3. otherwise the exact body bytes go to Anthropic with the client's own credential; an answer that
   ``fallback.decide_on_status`` marks (429, 529, 5xx; connect errors and timeouts too) is not
   shown to the client: the request is served from Bedrock instead, and a 429 starts a cooldown;
4. a JSON answer is returned with the upstream status and headers; an SSE answer is relayed chunk by
   chunk as it arrives, while ``UsageTap`` reads the usage; after the first byte there is no fallback:
   a failure (a broken connection, an event that is not Anthropic's grammar, a bug of ours) becomes
   an SSE ``error`` event and the stream ends cleanly; a stream cut by shutdown is recorded as such
   (``drain.py``), one the client left as 499;
5. if Bedrock fails too, the client gets Anthropic's own answer (e.g. the 429 with its
   ``retry-after``), or Bedrock's error when Anthropic was never asked;
6. one usage event and one log line per request, whatever happened (client gone included).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import anyio
import httpx
from starlette.responses import Response

from app.auth.keys import credential_fingerprint
from app.errors import ProxyError, UpstreamPoolExhausted, sse_error_event
from app.proxy.anthropic import AnthropicUpstream, map_stream_error
from app.proxy.cooldowns import CooldownTracker
from app.proxy.drain import Drain, cancelled_outcome
from app.proxy.fallback import LOCAL_POOL_EXHAUSTED, Decision, decide_on_error, decide_on_status
from app.proxy.headers import client_response_headers, require_client_credential, upstream_request_headers
from app.proxy.request import ProxyRequest
from app.proxy.responses import raw_response, streaming_response
from app.proxy.sse import UsageTap, usage_from_message
from app.proxy.thinking import (THINKING_STRIPPED, error_message, has_replayed_thinking, is_signature_rejection,
                                strip_foreign_thinking)
from app.usage.events import UsageEvent
from app.usage.recorder import UsageRecorder

log = logging.getLogger("claude_code_proxy.requests")



class Admission(Protocol):
    """Checked before any upstream call (quotas, rate limits); raises ProxyError (e.g. RateLimited)."""

    async def check(self, preq: ProxyRequest) -> None: ...


class BedrockServer(Protocol):
    async def serve(self, preq: ProxyRequest, *, reason: str, finish: object) -> Response: ...


@dataclass(frozen=True)
class FallbackOptions:
    """Routing settings (see ``Settings``): times in seconds."""

    default_policy: str = "anthropic_first"
    force_fallback: bool = False
    fallback_on_auth_errors: bool = False
    cooldown_default_s: float = 60.0
    cooldown_max_s: float = 3600.0


class _FallBack(Exception):
    """Anthropic could not serve the request; ``original`` is what it answered (None: no answer)."""

    def __init__(self, decision: Decision, original: Response | None, error: ProxyError | None) -> None:
        self.decision, self.original, self.error = decision, original, error


class Forwarder:
    """Serves proxy requests. One instance per app, created in the lifespan."""

    def __init__(self, upstream: AnthropicUpstream, recorder: UsageRecorder, *, secret_key: bytes = b"",
                 admission: Admission | None = None, bedrock: BedrockServer | None = None,
                 cooldowns: CooldownTracker | None = None, options: FallbackOptions | None = None,
                 drain: Drain | None = None) -> None:
        self._upstream, self._recorder, self._secret = upstream, recorder, secret_key
        self._admission, self._bedrock, self._cooldowns = admission, bedrock, cooldowns
        self._options = options or FallbackOptions()
        self._drain = drain

    async def handle(self, preq: ProxyRequest) -> Response:
        """Serve ``preq``; returns the client's response. Raises ProxyError before any byte is sent."""
        try:
            if self._admission is not None:
                await self._admission.check(preq)
            policy = preq.principal.fallback_policy or self._options.default_policy
            if self._bedrock is None:
                policy = "anthropic_only"
            if policy != "anthropic_only" and self._options.force_fallback:
                return await self._via_bedrock(preq, "forced", None)
            if policy == "bedrock_only":
                return await self._via_bedrock(preq, "bedrock_only", None)
            _, credential = require_client_credential(preq.headers)
            fingerprint = credential_fingerprint(self._secret, credential)
            if policy == "anthropic_first" and self._cooldowns is not None:
                if (reason := await self._cooldowns.active(fingerprint)) is not None:
                    return await self._via_bedrock(preq, f"cooldown:{reason}", None)
            try:
                return await self._via_anthropic(preq, may_fall_back=policy == "anthropic_first")
            except _FallBack as fallback:
                await self._note_failure(fingerprint, fallback.decision)
                return await self._via_bedrock(preq, fallback.decision.reason or "fallback", fallback)
        except ProxyError as exc:
            if not getattr(exc, "usage_recorded", False):
                self.finish(preq, provider="anthropic", status=exc.status_code, error_type=exc.error_type)
            raise
        except BaseException:
            if preq.reservation is not None:  # never reached finish(): give the quota estimate back
                preq.reservation.release()
            raise

    async def _note_failure(self, fingerprint: str, decision: Decision) -> None:
        if self._cooldowns is None:
            return
        if decision.cooldown_s:
            await self._cooldowns.start(fingerprint, decision.cooldown_s, decision.reason or "rate_limited")
        elif decision.counts_toward_circuit:
            await self._cooldowns.record_failure(fingerprint)

    async def _via_bedrock(self, preq: ProxyRequest, reason: str, fallback: _FallBack | None) -> Response:
        assert self._bedrock is not None
        try:
            return await self._bedrock.serve(preq, reason=reason, finish=self.finish)
        except ProxyError as exc:
            if not getattr(exc, "usage_recorded", False):  # e.g. the model had no Bedrock mapping
                self.finish(preq, provider="bedrock", status=exc.status_code, error_type=exc.error_type,
                            fallback_reason=reason)
            exc.usage_recorded = True  # type: ignore[attr-defined]
            log.warning("bedrock fallback failed (%s: %s)", exc.error_type, exc.message)
            if fallback is not None and fallback.original is not None:
                return fallback.original
            if fallback is not None and fallback.error is not None:
                fallback.error.usage_recorded = True  # type: ignore[attr-defined]
                # The client sees Anthropic's failure; say that the fallback was tried and failed too.
                fallback.error.message += f"; the Bedrock fallback failed too ({exc.error_type}: {exc.message})"
                raise fallback.error from None
            raise

    async def _open_anthropic(self, preq: ProxyRequest, body: bytes, stack: AsyncExitStack,
                              may_fall_back: bool) -> httpx.Response:
        try:
            return await stack.enter_async_context(self._upstream.send(
                preq.path, preq.query, upstream_request_headers(preq.raw_headers), body))
        except ProxyError as exc:
            if isinstance(exc, UpstreamPoolExhausted):
                preq.notes.append(LOCAL_POOL_EXHAUSTED)  # counted by ProxyMetrics from the usage event
                log.warning("local connection pool to Anthropic exhausted")
            decision = decide_on_error(exc)
            if may_fall_back and decision.fall_back:
                raise _FallBack(decision, None, exc) from None
            raise

    async def _via_anthropic(self, preq: ProxyRequest, *, may_fall_back: bool) -> Response:
        stack = AsyncExitStack()
        upstream = await self._open_anthropic(preq, preq.body, stack, may_fall_back)
        if upstream.status_code == 400 and preq.endpoint == "messages" and has_replayed_thinking(preq.params):
            async with stack:
                rejected = await _read_quietly(upstream)
            if not is_signature_rejection(error_message(rejected)):
                headers = client_response_headers(upstream.headers.multi_items(), "anthropic")
                self.finish(preq, provider="anthropic", status=400, error_type="invalid_request_error",
                            request_id=upstream.headers.get("request-id"))
                return raw_response(rejected, 400, headers)
            # Thinking blocks signed by Bedrock (after a fallback): retry once without them. This is
            # the one case where the body is re-serialized instead of forwarded byte for byte.
            log.info("anthropic rejected a replayed thinking signature; retrying without thinking blocks")
            preq.notes.append(THINKING_STRIPPED)
            stripped = json.dumps(strip_foreign_thinking(preq.params), separators=(",", ":"),
                                  ensure_ascii=False).encode()
            stack = AsyncExitStack()
            upstream = await self._open_anthropic(preq, stripped, stack, may_fall_back)
        headers = client_response_headers(upstream.headers.multi_items(), "anthropic")
        if upstream.status_code != 200 and may_fall_back:
            decision = decide_on_status(
                upstream.status_code, upstream.headers, now=datetime.now(UTC),
                fallback_on_auth_errors=self._options.fallback_on_auth_errors,
                cooldown_default_s=self._options.cooldown_default_s, cooldown_max_s=self._options.cooldown_max_s)
            if decision.fall_back:
                async with stack:
                    body = await _read_quietly(upstream)
                raise _FallBack(decision, raw_response(body, upstream.status_code, headers), None)
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
                if tap.malformed is not None:
                    # Not Anthropic's grammar: the client gets an error it can parse instead of it.
                    status, error_type = 502, "api_error"
                    log.warning("anthropic sent a malformed %s event; stream ended", tap.malformed)
                    yield sse_error_event("api_error", f"Anthropic sent a malformed {tap.malformed} event")
                    return
                yield chunk
            if not tap.complete and tap.error_type is None:
                # Upstream closed without message_stop: say so rather than end silently.
                status, error_type = 502, "api_error"
                yield sse_error_event("api_error", "the upstream stream ended before message_stop")
        except httpx.HTTPError as exc:
            error = map_stream_error(exc)
            status, error_type = error.status_code, error.error_type
            yield sse_error_event(error.error_type, error.message)
        except Exception as exc:  # a bug of ours: the stream still ends with an error, not a reset
            log.error("anthropic relay failed: %s", type(exc).__name__, exc_info=exc)
            status, error_type = 500, "api_error"
            yield sse_error_event("api_error", "internal proxy error")
        except BaseException:
            # Client disconnected (cancellation) or shutdown cut the stream: record what we have.
            status, error_type = cancelled_outcome(self._drain, preq.notes)
            raise
        finally:
            if tap.error_type is not None and status == 200:
                status, error_type = 500, tap.error_type
            self.finish(preq, provider="anthropic", status=status, usage=tap.usage, error_type=error_type,
                        streamed=True, ttft_ms=ttft_ms, request_id=upstream.headers.get("request-id"))
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
            fallback_reason=fallback_reason, request_id=request_id, notes=list(preq.notes),
            input_tokens=usage.get("input_tokens", 0), output_tokens=usage.get("output_tokens", 0),
            cache_creation_input_tokens=usage.get("cache_creation_input_tokens", 0),
            cache_creation_1h_input_tokens=usage.get("cache_creation_1h_input_tokens", 0),
            cache_read_input_tokens=usage.get("cache_read_input_tokens", 0))
        self._recorder.record(event)
        if preq.reservation is not None:  # quotas: the real usage replaces the admission estimate (once)
            preq.reservation.settle(event)
        log.info("request", extra={
            "proxy_request_id": preq.proxy_request_id, "request_id": request_id,
            "user_id": preq.principal.user_id, "access_key_id": preq.principal.access_key_id,
            "endpoint": preq.endpoint, "model": preq.model, "provider": provider,
            "provider_model": event.provider_model, "status": status, "error_type": error_type,
            "stream": event.streamed, "fallback_reason": fallback_reason, "notes": event.notes or None,
            "input_tokens": event.input_tokens, "output_tokens": event.output_tokens,
            "cache_creation_input_tokens": event.cache_creation_input_tokens,
            "cache_read_input_tokens": event.cache_read_input_tokens,
            "latency_ms": event.latency_ms, "ttft_ms": event.ttft_ms})


async def _read_quietly(upstream: httpx.Response) -> bytes:
    try:
        return await upstream.aread()
    except httpx.HTTPError:
        return b""


def _usage_from_json(body: bytes) -> dict[str, int]:
    try:
        return usage_from_message(json.loads(body).get("usage"))
    except (ValueError, AttributeError, RecursionError):
        return {}
