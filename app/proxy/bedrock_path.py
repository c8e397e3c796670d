"""Serving a Messages API call from Amazon Bedrock (Converse / ConverseStream), translated so the
client cannot tell: same JSON shape, same SSE grammar, the model id the client asked for.

Errors before the first byte are raised as ProxyError (the caller decides what the client sees);
after it they become an SSE ``error`` event and the stream ends. A ``ping`` goes out every
``ping_interval_s`` seconds while Bedrock is silent, as Anthropic does.
Sources: https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ConverseStream.html,
https://docs.anthropic.com/en/api/messages-streaming
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
from cachetools import TTLCache
from starlette.responses import Response

from app.bedrock.client import BedrockRuntime
from app.bedrock.models import BedrockModel, resolve_model
from app.bedrock.request import dropped_fields, thinking_omitted, to_converse_request
from app.bedrock.response import new_message_id, to_message
from app.bedrock.server_tools import NOTE as SERVER_TOOL_NOTE
from app.bedrock.server_tools import answer_without_bedrock, render_answer
from app.bedrock.stream import StreamTranslator, encode_sse, ping_event
from app.bedrock.tokens import estimate_input_tokens
from app.crypto.envelope import DecryptionError, bedrock_key_context
from app.errors import ApiError, InvalidRequest, ProxyError, sse_error_event
from app.proxy.headers import PROVIDER_HEADER
from app.proxy.request import ProxyRequest
from app.proxy.responses import raw_response, streaming_response
from app.proxy.sse import usage_from_message
from app.proxy.thinking import THINKING_STRIPPED, has_replayed_thinking, is_signature_rejection, strip_foreign_thinking
from app.store.model_map import ModelMapCache

log = logging.getLogger(__name__)

Finish = Callable[..., None]  # Forwarder.finish: records usage and logs the request
CLIENT_CLOSED = 499
FALLBACK_REASON_HEADER = "x-proxy-fallback-reason"
TOKEN_COUNT_HEADER = "x-proxy-token-count"


class BedrockKeys:
    """Per-access-key Bedrock API keys: decrypted on demand, cached in-process for ``ttl_s`` seconds."""

    def __init__(self, access_keys: Any, cipher: Any, *, ttl_s: float = 300.0) -> None:
        self._keys, self._cipher = access_keys, cipher
        self._cache: TTLCache[str, str | None] = TTLCache(maxsize=10_000, ttl=ttl_s)

    async def bearer_for(self, access_key_id: str) -> str | None:
        """The plaintext Bedrock API key registered for this access key, or None (default AWS chain)."""
        if access_key_id in self._cache:
            return self._cache[access_key_id]
        doc = await self._keys.get(access_key_id)
        envelope = (doc or {}).get("bedrock_key")
        token = None
        if envelope:
            try:
                token = (await self._cipher.decrypt(envelope, bedrock_key_context(access_key_id))).decode()
            except DecryptionError as exc:
                log.error("stored Bedrock API key for %s cannot be decrypted: %s", access_key_id, exc)
                raise ApiError("the Bedrock API key registered for this access key cannot be decrypted "
                               "(was PROXY_SECRET_KEY or the KMS key changed?); an admin must register it again") from None
        self._cache[access_key_id] = token
        return token

    def forget(self, access_key_id: str) -> None:
        self._cache.pop(access_key_id, None)


class BedrockPath:
    """``await serve(preq, reason=..., finish=...) -> Response``."""

    def __init__(self, runtime: BedrockRuntime, keys: BedrockKeys, *, model_map: ModelMapCache,
                 profile_prefix: str, ping_interval_s: float = 10.0) -> None:
        self._runtime, self._keys = runtime, keys
        self._model_map, self._profile_prefix = model_map, profile_prefix
        self._ping_interval_s = ping_interval_s

    async def serve(self, preq: ProxyRequest, *, reason: str, finish: Finish) -> Response:
        model = resolve_model(preq.model or "", overrides=await self._model_map.overrides(),
                              profile_prefix=self._profile_prefix)
        bearer = await self._keys.bearer_for(preq.principal.access_key_id) if preq.principal.has_bedrock_key else None
        headers = [(PROVIDER_HEADER, "bedrock"), (FALLBACK_REASON_HEADER, reason),
                   ("request-id", "req_bdrk_" + uuid.uuid4().hex[:24])]
        done = _Finisher(finish, preq, model, reason)
        try:
            return await self._serve(preq, model, bearer, headers, done)
        except ProxyError as exc:
            # Recorded here, with the Bedrock model id; the Forwarder sees usage_recorded.
            done(status=exc.status_code, usage={}, error_type=exc.error_type)
            exc.usage_recorded = True  # type: ignore[attr-defined]
            raise

    async def _serve(self, preq: ProxyRequest, model: BedrockModel, bearer: str | None,
                     headers: list[tuple[str, str]], done: _Finisher) -> Response:
        if preq.endpoint == "count_tokens":
            return await self._count_tokens(preq, model, bearer, headers, done)
        if (local := answer_without_bedrock(preq.params, model=preq.model or model.anthropic_model)) is not None:
            preq.notes.append(SERVER_TOOL_NOTE)  # a forced tool Bedrock cannot run: answered, not sent
            done(status=200, usage=usage_from_message(local["usage"]), streamed=preq.stream)
            body, content_headers = render_answer(local, stream=preq.stream)
            return raw_response(body, 200, [*content_headers, *headers])
        if preq.stream:
            return await self._stream(preq, model, bearer, headers, done)
        response = await self._with_signature_retry(
            preq, model, lambda request: self._runtime.converse(request, bearer_token=bearer))
        message = to_message(response, model=preq.model or model.anthropic_model,
                             stop_sequences=preq.params.get("stop_sequences"),
                             omit_thinking=thinking_omitted(preq.params))
        done(status=200, usage=usage_from_message(message.get("usage")))
        body = json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode()
        return raw_response(body, 200, [("content-type", "application/json"), *headers])

    async def _with_signature_retry(self, preq: ProxyRequest, model: BedrockModel,
                                    call: Callable[[dict[str, Any]], Any]) -> Any:
        """Call Bedrock; if it rejects a replayed thinking signature (signed by Anthropic), retry
        once with the foreign thinking blocks removed, and record that it happened."""
        request = to_converse_request(preq.params, model, betas=preq.betas)
        if dropped := dropped_fields(preq.params):
            log.debug("fields not sent to bedrock: %s", ", ".join(sorted(dropped)))
        try:
            return await call(request)
        except InvalidRequest as exc:
            if not (has_replayed_thinking(preq.params) and is_signature_rejection(exc.message)):
                raise
            log.info("bedrock rejected a replayed thinking signature; retrying without thinking blocks")
            preq.notes.append(THINKING_STRIPPED)
            return await call(to_converse_request(strip_foreign_thinking(preq.params), model, betas=preq.betas))

    async def _count_tokens(self, preq: ProxyRequest, model: BedrockModel, bearer: str | None,
                            headers: list[tuple[str, str]], done: _Finisher) -> Response:
        """Bedrock's CountTokens; if that fails, a clearly labelled over-estimate, never a low guess."""
        request = to_converse_request({**preq.params, "max_tokens": preq.params.get("max_tokens") or 1},
                                      model, betas=preq.betas)
        converse_input = {k: request[k] for k in ("messages", "system", "toolConfig") if k in request}
        try:
            count, source = await self._runtime.count_tokens(model.model_id, converse_input,
                                                             bearer_token=bearer), "bedrock"
        except ProxyError as exc:
            log.info("bedrock count_tokens failed (%s); returning an estimate", exc.error_type)
            count, source = estimate_input_tokens(preq.params), "estimate"
        done(status=200, usage={})
        body = json.dumps({"input_tokens": count}).encode()
        return raw_response(body, 200, [("content-type", "application/json"), (TOKEN_COUNT_HEADER, source), *headers])

    async def _stream(self, preq: ProxyRequest, model: BedrockModel, bearer: str | None,
                      headers: list[tuple[str, str]], done: _Finisher) -> Response:
        async def open_stream(request: dict[str, Any]) -> tuple[AsyncIterator[dict[str, Any]], dict[str, Any] | None]:
            events = self._runtime.converse_stream(request, bearer_token=bearer)
            iterator = aiter(events)
            try:
                first = await anext(iterator)  # errors before the first byte surface here
            except StopAsyncIteration:
                first = None
            return iterator, first

        iterator, first = await self._with_signature_retry(preq, model, open_stream)
        translator = StreamTranslator(preq.model or model.anthropic_model, new_message_id(),
                                      stop_sequences=preq.params.get("stop_sequences"),
                                      omit_thinking=thinking_omitted(preq.params))
        body = self._relay(preq, iterator, first, translator, done)
        return streaming_response(body, 200, [("content-type", "text/event-stream; charset=utf-8"),
                                              ("cache-control", "no-cache"), *headers])

    async def _relay(self, preq: ProxyRequest, iterator: AsyncIterator[dict[str, Any]], first: dict[str, Any] | None,
                     translator: StreamTranslator, done: _Finisher) -> AsyncIterator[bytes]:
        status, error_type, ttft_ms = 200, None, None
        pending: asyncio.Task[dict[str, Any]] | None = None
        try:
            event = first
            while event is not None:
                for out in translator.feed(event):
                    if ttft_ms is None and out.get("type") == "content_block_delta":
                        ttft_ms = (time.perf_counter() - preq.started) * 1000
                    yield encode_sse(out)
                pending = asyncio.ensure_future(anext(iterator))
                while not pending.done():
                    finished, _ = await asyncio.wait({pending}, timeout=self._ping_interval_s)
                    if not finished:
                        yield ping_event()
                try:
                    event = pending.result()
                except StopAsyncIteration:
                    event = None
                pending = None
            for out in translator.finish():
                yield encode_sse(out)
        except ProxyError as exc:
            status, error_type = exc.status_code, exc.error_type
            yield sse_error_event(exc.error_type, exc.message)
        except BaseException:
            status, error_type = CLIENT_CLOSED, "client_closed"
            raise
        finally:
            done(status=status, usage=usage_from_message(translator.usage), streamed=True,
                 ttft_ms=ttft_ms, error_type=error_type)
            with anyio.CancelScope(shield=True):
                if pending is not None and not pending.done():
                    pending.cancel()
                    # Let the cancellation land before closing: aclose() on a generator that is
                    # still running raises instead of closing.
                    await asyncio.wait({pending})
                close = getattr(iterator, "aclose", None)
                if close is not None:
                    try:
                        await close()
                    except Exception:  # noqa: BLE001 - closing a broken stream
                        pass


class _Finisher:
    """Calls ``finish`` once with the Bedrock-specific fields filled in."""

    def __init__(self, finish: Finish, preq: ProxyRequest, model: BedrockModel, reason: str) -> None:
        self._finish, self._preq, self._model, self._reason = finish, preq, model, reason
        self.called = False

    def __call__(self, *, status: int, usage: dict[str, int], **extra: Any) -> None:
        if self.called:
            return
        self.called = True
        self._finish(self._preq, provider="bedrock", status=status, usage=usage,
                     provider_model=self._model.model_id, fallback_reason=self._reason, **extra)
