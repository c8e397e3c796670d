"""What one proxy request came to (``Outcome``), and its one record: the usage event, the quota
settle and the request's log line.

``Forwarder.handle`` creates one ``Outcome`` per request and owns the call that records it; the
provider branches only fill it in. A streamed answer hands that call to the ``Relay``, which makes it
when the stream ends (client gone and shutdown included). So a request is recorded exactly once by
construction: no branch records, and no error carries a "recorded" flag.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from app.errors import ProxyError
from app.proxy.request import ProxyRequest
from app.records.events import UsageEvent
from app.usage.attribution import attribution_from_headers


@dataclass(slots=True)
class Outcome:
    """The fields of a request's usage event and log line that the branches learn.

    ``status``: HTTP status the request came to (None until known); ``usage``: Anthropic usage
    counters (tokens, see ``usage_tap.usage_from_message``); ``ttft_ms``: arrival to the first
    ``content_block_delta`` event sent to the client (ms, streams only); ``provider_model``: the
    Bedrock model id / inference profile when Bedrock served it; ``error_type``: for the log line.
    """

    provider: str = "anthropic"
    status: int | None = None
    usage: dict[str, int] = field(default_factory=dict)
    error_type: str | None = None
    streamed: bool = False
    ttft_ms: float | None = None
    request_id: str | None = None
    provider_model: str | None = None
    fallback_reason: str | None = None

    def fail(self, error: ProxyError) -> None:
        """The request ends with ``error``, unless a branch already settled the status (e.g. the
        Bedrock failure after Anthropic's own error: Bedrock's status is the one recorded)."""
        if self.status is None:
            self.status, self.error_type = error.status_code, error.error_type

    @classmethod
    def of_error(cls, error: ProxyError) -> Outcome:
        """The outcome of a request refused before any upstream call (e.g. a 400 / 413 body)."""
        return cls(status=error.status_code, error_type=error.error_type)


def usage_event(preq: ProxyRequest, outcome: Outcome, *, now: float | None = None) -> UsageEvent:
    """``preq`` + ``outcome`` -> the request's usage event; latency is arrival to ``now``
    (``time.perf_counter()`` seconds; default: now), in ms."""
    usage = outcome.usage
    latency_ms = ((time.perf_counter() if now is None else now) - preq.started) * 1000
    ttft_ms = outcome.ttft_ms
    return UsageEvent(
        user_id=preq.principal.user_id, access_key_id=preq.principal.access_key_id,
        provider=outcome.provider, model=preq.model,  # type: ignore[arg-type]
        provider_model=outcome.provider_model or preq.model,
        endpoint=preq.endpoint, status=outcome.status if outcome.status is not None else 500,
        streamed=outcome.streamed or preq.stream,
        latency_ms=round(latency_ms, 3), ttft_ms=None if ttft_ms is None else round(ttft_ms, 3),
        fallback_reason=outcome.fallback_reason, request_id=outcome.request_id, notes=list(preq.notes),
        input_tokens=usage.get("input_tokens", 0), output_tokens=usage.get("output_tokens", 0),
        cache_creation_input_tokens=usage.get("cache_creation_input_tokens", 0),
        cache_creation_1h_input_tokens=usage.get("cache_creation_1h_input_tokens", 0),
        cache_read_input_tokens=usage.get("cache_read_input_tokens", 0),
        **attribution_from_headers(preq.headers))


def log_fields(preq: ProxyRequest, outcome: Outcome, event: UsageEvent) -> dict[str, object]:
    """The request's JSON log line (``claude_code_proxy.requests``): ids, model, provider, status,
    tokens, times. Never a key, a credential or prompt text."""
    return {
        "proxy_request_id": preq.proxy_request_id, "request_id": outcome.request_id,
        "user_id": preq.principal.user_id, "access_key_id": preq.principal.access_key_id,
        "endpoint": preq.endpoint, "model": preq.model, "provider": outcome.provider,
        "provider_model": event.provider_model, "status": event.status, "error_type": outcome.error_type,
        "stream": event.streamed, "fallback_reason": outcome.fallback_reason, "notes": event.notes or None,
        "input_tokens": event.input_tokens, "output_tokens": event.output_tokens,
        "cache_creation_input_tokens": event.cache_creation_input_tokens,
        "cache_read_input_tokens": event.cache_read_input_tokens,
        "latency_ms": event.latency_ms, "ttft_ms": event.ttft_ms}
