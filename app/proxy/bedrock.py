"""BedrockUpstream: serving a Messages API call from Amazon Bedrock (Converse / ConverseStream),
translated so the client cannot tell: same JSON shape, same SSE grammar, the model id the client asked for.
Requests ``api_choice.ApiChoice`` picks go to InvokeModel / InvokeModelWithResponseStream with the
native body instead (``_invoke``: same retry, relay, pings, outcome and headers; issue 13).

Errors before the first byte are raised as ProxyError (the Forwarder decides what the client sees;
a malformed Converse answer is one too: 502 ``api_error``). A stream goes through the one ``Relay``
(``relay.py``) as Anthropic's does: this module turns ConverseStream events into SSE bytes, with a
``ping`` every ``ping_interval_s`` seconds while Bedrock is silent, as Anthropic does.
Sources: https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ConverseStream.html,
https://docs.anthropic.com/en/api/messages-streaming
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any, TypeVar

from starlette.responses import Response

from app.bedrock.api_choice import ApiChoice
from app.bedrock.capability import CapabilityRejected, with_betas
from app.bedrock.credentials import BedrockKeys
from app.bedrock.invoke import invoke_body_bytes, needs_tool_search, supports_tool_search, to_invoke_body
from app.bedrock.invoke_response import InvokeStreamTranslator, to_client_message
from app.bedrock.models import BedrockModel, resolve_model
from app.bedrock.request import dropped_fields, thinking_omitted, to_converse_request
from app.bedrock.response import new_message_id, to_message
from app.bedrock.runtime import BedrockRuntime
from app.bedrock.server_tools import NOTE as SERVER_TOOL_NOTE
from app.bedrock.server_tools import answer_without_bedrock, render_answer
from app.bedrock.stream import StreamTranslator
from app.bedrock.tokens import estimate_input_tokens
from app.errors import InvalidRequest, ProxyError, UpstreamPoolExhausted
from app.proxy.bedrock_sse import translated_sse
from app.proxy.drain import Drain
from app.proxy.headers import PROVIDER_HEADER
from app.proxy.outcome import Outcome
from app.proxy.relay import Relay
from app.proxy.request import ProxyRequest
from app.proxy.responses import raw_response
from app.proxy.thinking import SignatureRejected, rejects_signature, with_thinking_retry
from app.proxy.usage_tap import usage_from_message
from app.store.model_map import ModelMapCache

log = logging.getLogger(__name__)

T = TypeVar("T")
FALLBACK_REASON_HEADER = "x-proxy-fallback-reason"
BEDROCK_POOL_EXHAUSTED = "bedrock_pool_exhausted"  # note on the usage event
TOKEN_COUNT_HEADER = "x-proxy-token-count"
INVOKE_NOTE = "invoke_model"  # on the usage event, with the reason: "invoke_model:configured" / ":tool_search"
Events = AsyncGenerator[dict[str, Any], None]


class BedrockUpstream:
    """``await serve(preq, outcome) -> Response`` (a ``Relay`` for streams)."""

    def __init__(self, runtime: BedrockRuntime, keys: BedrockKeys, *, model_map: ModelMapCache,
                 profile_prefix: str, ping_interval_s: float = 10.0, drain: Drain | None = None,
                 api_choice: ApiChoice | None = None) -> None:
        self._runtime, self._keys = runtime, keys
        self._api_choice = api_choice or ApiChoice()
        self._model_map, self._profile_prefix = model_map, profile_prefix
        self._ping_interval_s = ping_interval_s
        self._drain = drain

    async def serve(self, preq: ProxyRequest, outcome: Outcome) -> Response:
        """Serve ``preq`` from Bedrock, filling in ``outcome`` (``provider_model``, status, usage).
        ``outcome.fallback_reason`` goes out as ``x-proxy-fallback-reason``. Raises ProxyError
        before the first byte (InvalidRequest when the model has no Bedrock mapping)."""
        model = resolve_model(preq.model or "", overrides=await self._model_map.overrides(),
                              profile_prefix=self._profile_prefix)
        outcome.provider_model = model.model_id
        bearer = await self._keys.bearer_for(preq.principal.access_key_id) if preq.principal.has_bedrock_key else None
        headers = [(PROVIDER_HEADER, "bedrock"), (FALLBACK_REASON_HEADER, outcome.fallback_reason or ""),
                   ("request-id", "req_bdrk_" + uuid.uuid4().hex[:24])]
        try:
            return await self._serve(preq, outcome, model, bearer, headers)
        except UpstreamPoolExhausted:
            preq.notes.append(BEDROCK_POOL_EXHAUSTED)  # counted by ProxyMetrics from the usage event
            log.warning("local connection pool to Bedrock exhausted")
            raise

    async def _serve(self, preq: ProxyRequest, outcome: Outcome, model: BedrockModel, bearer: str | None,
                     headers: list[tuple[str, str]]) -> Response:
        if preq.endpoint == "count_tokens":
            return await self._count_tokens(preq, outcome, model, bearer, headers)
        if (local := answer_without_bedrock(preq.params, model=preq.model or model.anthropic_model)) is not None:
            preq.notes.append(SERVER_TOOL_NOTE)  # a forced tool Bedrock cannot run: answered, not sent
            outcome.status, outcome.usage = 200, usage_from_message(local["usage"])
            body, content_headers = render_answer(local, stream=preq.stream)
            return raw_response(body, 200, [*content_headers, *headers])
        if (reason := self._api_choice.invoke_reason(preq.params, model)) is not None:
            preq.notes.append(f"{INVOKE_NOTE}:{reason}")
            return await self._invoke(preq, outcome, model, bearer, headers)
        if preq.stream:
            return await self._stream(preq, outcome, model, bearer, headers)
        response = await self._call(preq, model, lambda request: self._runtime.converse(request, bearer_token=bearer))
        message = to_message(response, model=preq.model or model.anthropic_model,
                             stop_sequences=preq.params.get("stop_sequences"),
                             omit_thinking=thinking_omitted(preq.params))
        outcome.status, outcome.usage = 200, usage_from_message(message.get("usage"))
        body = json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode()
        return raw_response(body, 200, [("content-type", "application/json"), *headers])

    async def _call(self, preq: ProxyRequest, model: BedrockModel, send: Callable[[Any], Awaitable[T]], *,
                    build: Callable[[dict[str, Any]], Any] | None = None) -> T:
        """``send(build(params))`` for ``preq`` (``build``: the Converse request by default), under the
        one thinking-signature retry (``thinking.with_thinking_retry``): Bedrock says so with a
        ValidationException (400)."""
        if dropped := dropped_fields(preq.params):
            log.debug("fields not sent to bedrock: %s", ", ".join(sorted(dropped)))

        async def attempt(params: dict[str, Any]) -> T:
            try:
                request = build(params) if build else to_converse_request(params, model, betas=preq.betas)
                return await send(request)
            except InvalidRequest as exc:
                if rejects_signature(params, exc.message):
                    raise SignatureRejected from exc
                error = with_betas(exc, preq.betas)
                if isinstance(error, CapabilityRejected):
                    log.info("bedrock refused a capability: %s (%s)", error.message, error.bedrock_message)
                if error is exc:
                    raise
                raise error from exc

        return await with_thinking_retry(preq.params, preq.notes, attempt)

    async def _invoke(self, preq: ProxyRequest, outcome: Outcome, model: BedrockModel, bearer: str | None,
                      headers: list[tuple[str, str]]) -> Response:
        """InvokeModel / InvokeModelWithResponseStream with the native body (app/bedrock/invoke.py),
        the answer made the client's by app/bedrock/invoke_response.py."""
        tool_search = needs_tool_search(preq.params) and supports_tool_search(model)
        client_model = preq.model or model.anthropic_model
        omit_thinking = thinking_omitted(preq.params)

        def build(params: dict[str, Any]) -> bytes:
            return invoke_body_bytes(to_invoke_body(params, model, betas=preq.betas, tool_search=tool_search))

        if not preq.stream:
            native = await self._call(preq, model, build=build, send=lambda body: self._runtime.invoke_model(
                model.model_id, body, bearer_token=bearer))
            message = to_client_message(native, model=client_model, message_id=new_message_id(),
                                        omit_thinking=omit_thinking)
            outcome.status, outcome.usage = 200, usage_from_message(message.get("usage"))
            body = json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode()
            return raw_response(body, 200, [("content-type", "application/json"), *headers])

        async def open_stream(body: bytes) -> tuple[Events, dict[str, Any] | None]:
            return await _opened(self._runtime.invoke_model_with_response_stream(model.model_id, body,
                                                                                 bearer_token=bearer))

        events, first = await self._call(preq, model, open_stream, build=build)
        translator = InvokeStreamTranslator(client_model, new_message_id(), omit_thinking=omit_thinking)
        return self._relay(preq, outcome, events, first, translator, headers)

    async def _count_tokens(self, preq: ProxyRequest, outcome: Outcome, model: BedrockModel, bearer: str | None,
                            headers: list[tuple[str, str]]) -> Response:
        """Bedrock's CountTokens: the ``invokeModel`` form (native body, tools counted) when the
        request offers tools, else the ``converse`` form, for the foundation-model id (CountTokens takes
        no inference profiles); if that fails, a clearly labelled over-estimate, never a low guess."""
        try:
            if any(isinstance(t, dict) and t.get("type") in (None, "custom") for t in preq.params.get("tools") or []):
                body = invoke_body_bytes(to_invoke_body(preq.params, model, betas=preq.betas))
                count = await self._runtime.count_tokens(model.count_tokens_model_id, invoke_body=body,
                                                         bearer_token=bearer)
            else:
                request = to_converse_request({**preq.params, "max_tokens": preq.params.get("max_tokens") or 1},
                                              model, betas=preq.betas)
                converse_input: dict[str, Any] = {k: request[k] for k in ("messages", "system") if k in request}
                count = await self._runtime.count_tokens(model.count_tokens_model_id, converse_input,
                                                         bearer_token=bearer)
            source = "bedrock"
        except ProxyError as exc:
            log.info("bedrock count_tokens failed (%s: %s); returning an estimate", exc.error_type, exc.message)
            count, source = estimate_input_tokens(preq.params), "estimate"
        outcome.status = 200
        body = json.dumps({"input_tokens": count}).encode()
        return raw_response(body, 200, [("content-type", "application/json"), (TOKEN_COUNT_HEADER, source), *headers])

    async def _stream(self, preq: ProxyRequest, outcome: Outcome, model: BedrockModel, bearer: str | None,
                      headers: list[tuple[str, str]]) -> Response:
        async def open_stream(request: dict[str, Any]) -> tuple[Events, dict[str, Any] | None]:
            return await _opened(self._runtime.converse_stream(request, bearer_token=bearer))

        events, first = await self._call(preq, model, open_stream)
        translator = StreamTranslator(preq.model or model.anthropic_model, new_message_id(),
                                      stop_sequences=preq.params.get("stop_sequences"),
                                      omit_thinking=thinking_omitted(preq.params))
        return self._relay(preq, outcome, events, first, translator, headers)

    def _relay(self, preq: ProxyRequest, outcome: Outcome, events: Events, first: dict[str, Any] | None,
               translator: StreamTranslator | InvokeStreamTranslator, headers: list[tuple[str, str]]) -> Relay:
        """The streamed answer for both APIs: ``events`` (``first`` already read) through ``translator``."""

        async def close() -> None:
            try:
                await events.aclose()
            except Exception:  # noqa: BLE001 - closing a broken stream
                pass

        return Relay(preq, outcome, self._sse(events, first, translator), close=close, upstream="Bedrock",
                     status_code=200, drain=self._drain,
                     headers=[("content-type", "text/event-stream; charset=utf-8"), ("cache-control", "no-cache"),
                              *headers])

    def _sse(self, events: Events, first: dict[str, Any] | None,
             translator: StreamTranslator | InvokeStreamTranslator) -> AsyncGenerator[bytes, None]:
        """ConverseStream (or InvokeModelWithResponseStream) events -> Anthropic SSE bytes, a ``ping`` while Bedrock is silent
        (``bedrock_sse.py``). Raises ProxyError (mid-stream failures, ``MalformedResponse``)."""
        return translated_sse(events, first, translator, ping_interval_s=self._ping_interval_s)


async def _opened(events: Events) -> tuple[Events, dict[str, Any] | None]:
    """``events`` with its first event read (None: an empty stream), so that errors before the first
    byte surface here, while a fallback or the thinking retry can still answer."""
    try:
        return events, await anext(events)
    except StopAsyncIteration:
        return events, None
