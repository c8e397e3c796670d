"""Forwarding a Messages API call: Anthropic first, Bedrock when Anthropic cannot serve it.

Flow for one request (``Forwarder.handle``), which creates the request's one ``Outcome`` and owns
the call that records it (``outcome.py``):
1. admission (quotas) -> the access key's ``fallback_policy`` (``anthropic_first`` by default,
   ``bedrock_only``, ``anthropic_only``; ``PROXY_FORCE_FALLBACK`` sends all to Bedrock);
2. a running cooldown for the client's credential -> straight to Bedrock;
3. otherwise the exact body bytes go to Anthropic with the client's own credential; an answer that
   ``fallback.decide_on_status`` marks (429, 529, 5xx; connect errors and timeouts too) is not
   shown to the client: the request is served from Bedrock (``BedrockUpstream``) instead, and a
   429 starts a cooldown; a 400 for a replayed thinking signature is retried once without the
   replayed thinking (``thinking.with_thinking_retry``, the same mechanism Bedrock uses);
4. a JSON answer is returned with the upstream status and headers; an SSE answer, from either
   provider, goes through the one ``Relay`` (``relay.py``), which records the outcome when the
   stream ends;
5. if Bedrock fails too, the client gets Anthropic's own answer (e.g. the 429 with its
   ``retry-after``), or Bedrock's error when Anthropic was never asked; the usage event records
   Bedrock's failure;
6. one usage event and one log line per request, whatever happened (client gone included).
"""

from __future__ import annotations

import json
import logging
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any, Protocol

import httpx
from starlette.responses import Response

from app.auth.keys import credential_fingerprint
from app.errors import ProxyError, UpstreamPoolExhausted
from app.proxy.anthropic import AnthropicResponse, AnthropicUpstream, read_body, sse_chunks
from app.proxy.cooldowns import CooldownTracker
from app.proxy.drain import Drain
from app.proxy.fallback import LOCAL_POOL_EXHAUSTED, Decision, decide_on_error, decide_on_status
from app.proxy.headers import client_response_headers, require_client_credential, upstream_request_headers
from app.proxy.outcome import Outcome, log_fields, usage_event
from app.proxy.relay import Relay
from app.proxy.request import ProxyRequest
from app.proxy.request_log import RequestLog
from app.proxy.responses import raw_response
from app.proxy.thinking import (SignatureRejected, error_message, has_replayed_thinking, rejects_signature,
                                with_thinking_retry)
from app.proxy.usage_tap import usage_from_message
from app.usage.recorder import UsageRecorder

log = logging.getLogger("claude_code_proxy.requests")


class Admission(Protocol):
    """Checked before any upstream call (quotas, rate limits); raises ProxyError (e.g. RateLimited)."""

    async def check(self, preq: ProxyRequest) -> None: ...


class BedrockServer(Protocol):
    """What the Forwarder needs of ``BedrockUpstream`` (``bedrock.py``)."""

    async def serve(self, preq: ProxyRequest, outcome: Outcome) -> Response: ...


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


@dataclass
class _Answer:
    """Anthropic's answer with its head read: ``stack`` closes it; ``body`` when already read."""

    upstream: AnthropicResponse
    stack: AsyncExitStack
    body: bytes | None = None


class Forwarder:
    """Serves proxy requests. One instance per app, created in the lifespan."""

    def __init__(self, upstream: AnthropicUpstream, recorder: UsageRecorder, *, secret_key: bytes = b"",
                 admission: Admission | None = None, bedrock: BedrockServer | None = None,
                 cooldowns: CooldownTracker | None = None, options: FallbackOptions | None = None,
                 drain: Drain | None = None, request_log: RequestLog | None = None) -> None:
        self._upstream, self._recorder, self._secret = upstream, recorder, secret_key
        self._admission, self._bedrock, self._cooldowns = admission, bedrock, cooldowns
        self._options = options or FallbackOptions()
        self._drain = drain
        self.request_log = request_log or RequestLog(log)  # the app's lifespan starts its writer

    async def handle(self, preq: ProxyRequest) -> Response:
        """Serve ``preq``; returns the client's response. Raises ProxyError before any byte is sent.
        Records the request once: here, or (for a stream) by the Relay when the stream ends."""
        outcome = Outcome()
        try:
            response = await self._route(preq, outcome)
        except ProxyError as exc:
            outcome.fail(exc)
            self.record_outcome(preq, outcome)
            raise
        except BaseException:
            if preq.reservation is not None:  # never recorded: give the quota estimate back
                preq.reservation.release()
            raise
        if isinstance(response, Relay):
            return response.recording(partial(self.record_outcome, preq, outcome))
        self.record_outcome(preq, outcome)
        return response

    def record_outcome(self, preq: ProxyRequest, outcome: Outcome) -> None:
        """Record what ``preq`` came to: its usage event, the settle of its quota reservation (the
        real usage replaces the admission estimate) and its log line. Synchronous, so it is safe in
        cleanup. Called once per request (by ``handle``, a Relay, or a route for a refused body)."""
        event = usage_event(preq, outcome)
        self._recorder.record(event)
        if preq.reservation is not None:
            preq.reservation.settle(event)
        if self.request_log.enabled:
            self.request_log.add(log_fields(preq, outcome, event))

    async def _route(self, preq: ProxyRequest, outcome: Outcome) -> Response:
        if self._admission is not None:
            await self._admission.check(preq)
        policy = preq.principal.fallback_policy or self._options.default_policy
        if self._bedrock is None:
            policy = "anthropic_only"
        if policy != "anthropic_only" and self._options.force_fallback:
            return await self._via_bedrock(preq, outcome, "forced", None)
        if policy == "bedrock_only":
            return await self._via_bedrock(preq, outcome, "bedrock_only", None)
        _, credential = require_client_credential(preq.headers)
        fingerprint = credential_fingerprint(self._secret, credential)
        if policy == "anthropic_first" and self._cooldowns is not None:
            if (reason := await self._cooldowns.active(fingerprint)) is not None:
                return await self._via_bedrock(preq, outcome, f"cooldown:{reason}", None)
        try:
            return await self._via_anthropic(preq, outcome, may_fall_back=policy == "anthropic_first")
        except _FallBack as fallback:
            await self._note_failure(fingerprint, fallback.decision)
            return await self._via_bedrock(preq, outcome, fallback.decision.reason or "fallback", fallback)

    async def _note_failure(self, fingerprint: str, decision: Decision) -> None:
        if self._cooldowns is None:
            return
        if decision.cooldown_s:
            await self._cooldowns.start(fingerprint, decision.cooldown_s, decision.reason or "rate_limited")
        elif decision.counts_toward_circuit:
            await self._cooldowns.record_failure(fingerprint)

    async def _via_bedrock(self, preq: ProxyRequest, outcome: Outcome, reason: str,
                           fallback: _FallBack | None) -> Response:
        assert self._bedrock is not None
        outcome.provider, outcome.fallback_reason = "bedrock", reason
        try:
            return await self._bedrock.serve(preq, outcome)
        except ProxyError as exc:
            outcome.fail(exc)  # Bedrock's failure is what is recorded, whatever the client gets
            log.warning("bedrock fallback failed (%s: %s)", exc.error_type, exc.message)
            if fallback is not None and fallback.original is not None:
                return fallback.original
            if fallback is not None and fallback.error is not None:
                # The client sees Anthropic's failure; say that the fallback was tried and failed too.
                fallback.error.message += f"; the Bedrock fallback failed too ({exc.error_type}: {exc.message})"
                raise fallback.error from None
            raise

    async def _open_anthropic(self, preq: ProxyRequest, body: bytes, stack: AsyncExitStack,
                              may_fall_back: bool) -> AnthropicResponse:
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

    async def _ask_anthropic(self, preq: ProxyRequest, may_fall_back: bool) -> _Answer:
        """Send the body; a 400 for a replayed thinking signature (thinking blocks signed by Bedrock
        after a fallback) is retried once without them: the one case where the body is
        re-serialized instead of forwarded byte for byte."""

        async def attempt(params: dict[str, Any]) -> _Answer:
            body = preq.body if params is preq.params else json.dumps(
                params, separators=(",", ":"), ensure_ascii=False).encode()
            stack = AsyncExitStack()
            upstream = await self._open_anthropic(preq, body, stack, may_fall_back)
            if upstream.status_code == 400 and preq.endpoint == "messages" and has_replayed_thinking(params):
                async with stack:
                    rejected = await _read_quietly(upstream)
                if rejects_signature(params, error_message(rejected)):
                    raise SignatureRejected
                return _Answer(upstream, stack, rejected)
            return _Answer(upstream, stack)

        return await with_thinking_retry(preq.params, preq.notes, attempt)

    async def _via_anthropic(self, preq: ProxyRequest, outcome: Outcome, *, may_fall_back: bool) -> Response:
        answer = await self._ask_anthropic(preq, may_fall_back)
        upstream, stack, body = answer.upstream, answer.stack, answer.body
        headers = client_response_headers(upstream.headers.multi_items(), "anthropic")
        if upstream.status_code != 200 and may_fall_back:
            decision = decide_on_status(
                upstream.status_code, upstream.headers, now=datetime.now(UTC),
                fallback_on_auth_errors=self._options.fallback_on_auth_errors,
                cooldown_default_s=self._options.cooldown_default_s, cooldown_max_s=self._options.cooldown_max_s)
            if decision.fall_back:
                if body is None:
                    async with stack:
                        body = await _read_quietly(upstream)
                raise _FallBack(decision, raw_response(body, upstream.status_code, headers), None)
        outcome.request_id = upstream.headers.get("request-id")
        if body is None and upstream.headers.get("content-type", "").startswith("text/event-stream"):
            return Relay(preq, outcome, sse_chunks(upstream), close=stack.aclose, upstream="Anthropic",
                         status_code=upstream.status_code, headers=headers, drain=self._drain,
                         at_eof=upstream.at_eof)
        if body is None:
            async with stack:
                body = await read_body(upstream)
        outcome.status = upstream.status_code
        if upstream.status_code != 200:
            outcome.error_type = _error_type(body)
        elif preq.endpoint == "messages":
            outcome.usage = _usage_from_json(body)
        return raw_response(body, upstream.status_code, headers)


async def _read_quietly(upstream: AnthropicResponse) -> bytes:
    try:
        return await upstream.aread()
    except httpx.HTTPError:
        return b""


def _usage_from_json(body: bytes) -> dict[str, int]:
    try:
        return usage_from_message(json.loads(body).get("usage"))
    except (ValueError, AttributeError, RecursionError):
        return {}


def _error_type(body: bytes) -> str:
    """``error.type`` of an Anthropic error envelope, for the log line (``api_error`` if none)."""
    try:
        error = json.loads(body).get("error")
        return error["type"] if isinstance(error["type"], str) else "api_error"
    except (ValueError, AttributeError, RecursionError, KeyError, TypeError):
        return "api_error"
