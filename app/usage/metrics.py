"""Prometheus metrics, observed from usage events as they are recorded (so the Forwarder needs no
hooks), from the recorder at scrape time, and from an ASGI middleware for in-flight requests.

Usage events are folded into the counters and histograms in batches: ``observe`` only queues the
event, and the queue is folded when it reaches ``FOLD_AT`` events or when the registry is read (a
collector registered before the metrics folds first, so ``/metrics`` and ``get_sample_value`` always
see every observed event). Counting one event through ``labels(...).inc()`` cost ~60 us of the
proxy's CPU per request under load, about 8 % of a streamed request (bench/README.md, issue 16);
folded, the same counters take one ``labels`` call per distinct label set per batch.
The in-flight gauges read plain counters at scrape time (``Gauge.set_function``): no lock per request.

Each app has its own ``CollectorRegistry`` (tests build many apps in one process). Model labels are
the canonical model name when the price table knows it, else ``other`` (the model is client-supplied,
and unbounded label values would blow up the time-series count).

Metrics (prefix ``claude_proxy_``):

- ``requests_total{provider,model,status}`` counter; ``fallbacks_total{reason}`` counter
- ``request_duration_seconds{provider,streamed}`` and ``time_to_first_token_seconds{provider}`` histograms
  (time to first token: arrival -> the first ``content_block_delta`` sent to the client, both providers)
- ``tokens_total{provider,model,type}`` (type: input, output, cache_creation, cache_read) counter
- ``cost_usd_total{provider,model}`` counter (priced requests only)
- ``quota_rejections_total{scope,limit}`` counter
- ``in_flight_requests`` and ``in_flight_streams`` gauges (proxy routes only)
- ``usage_queue_depth`` gauge, ``usage_write_failures_total``, ``usage_events_written_total``,
  ``usage_events_dropped_total``, ``usage_events_dead_lettered_total``, ``usage_events_sanitized_total``
  counters (read from the UsageRecorder at scrape time)
- ``upstream_pool_exhausted_total{upstream}`` counter: requests that found the proxy's own
  connection pool to ``anthropic`` / ``bedrock`` full (usage-event notes ``local_pool_exhausted`` /
  ``bedrock_pool_exhausted``); ``streams_cut_by_shutdown_total`` counter (note ``shutdown``)
- ``bedrock_connections_in_use``, ``bedrock_connection_waiters``, ``bedrock_max_connections``
  gauges and ``bedrock_connection_waits_total`` counter (read from BedrockRuntime at scrape time)
"""

from __future__ import annotations

from collections import Counter as Tally
from collections import deque
from collections.abc import Callable, Iterator, MutableMapping
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from app.records.events import UsageEvent
from app.usage.pricing import PriceTable, canonical_model

PREFIX = "claude_proxy_"
LATENCY_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600)
TTFT_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 20, 60)
_TOKEN_TYPES = (("input", "input_tokens"), ("output", "output_tokens"),
                ("cache_creation", "cache_creation_input_tokens"), ("cache_read", "cache_read_input_tokens"))
_PROXY_PATH_MARKER = "/v1/messages"  # both key forms: /v1/messages... and /ak/{key}/v1/messages...
# Usage-event notes (set in app/proxy/fallback.py, bedrock.py, drain.py; spelled out here so
# that usage/ does not import proxy/).
_POOL_EXHAUSTED_NOTES = {"local_pool_exhausted": "anthropic", "bedrock_pool_exhausted": "bedrock"}
_SHUTDOWN_NOTE = "shutdown"
FOLD_AT = 256  # queued usage events that trigger a fold without a scrape (bounds the queue's memory)


class _FoldFirst(Collector):
    """Registered before every metric of the registry: reading the registry folds the queued
    events into the metrics first; yields no metric of its own."""

    def __init__(self, fold: Callable[[], None]) -> None:
        self._fold = fold

    def collect(self) -> Iterator[Any]:
        self._fold()
        return iter(())


class _RecorderCollector(Collector):
    def __init__(self, recorder: Any) -> None:
        self.recorder = recorder

    def collect(self) -> Iterator[Any]:
        r = self.recorder
        yield GaugeMetricFamily(PREFIX + "usage_queue_depth", "Usage events waiting to be written", value=r.depth)
        yield CounterMetricFamily(PREFIX + "usage_write_failures", "Failed usage batch writes (each retried)",
                                  value=r.write_failures)
        yield CounterMetricFamily(PREFIX + "usage_events_written", "Usage events written to the store",
                                  value=r.written)
        yield CounterMetricFamily(PREFIX + "usage_events_dropped", "Usage events dropped (queue full)",
                                  value=r.dropped)
        yield CounterMetricFamily(PREFIX + "usage_events_dead_lettered",
                                  "Usage events the store cannot take, kept in usage_dead_letter",
                                  value=getattr(r, "dead_lettered", 0))
        yield CounterMetricFamily(PREFIX + "usage_events_sanitized",
                                  "Usage events with a field cleaned before queuing (bad string, count out of range)",
                                  value=getattr(r, "sanitized", 0))


class _BedrockCollector(Collector):
    def __init__(self, runtime: Any) -> None:
        self.runtime = runtime

    def collect(self) -> Iterator[Any]:
        r = self.runtime
        yield GaugeMetricFamily(PREFIX + "bedrock_connections_in_use",
                                "Bedrock calls and streams holding one of the replica's connections", value=r.in_use)
        yield GaugeMetricFamily(PREFIX + "bedrock_connection_waiters",
                                "Bedrock calls waiting for a free connection", value=r.waiting)
        yield GaugeMetricFamily(PREFIX + "bedrock_max_connections",
                                "Bedrock connections per replica (PROXY_BEDROCK_MAX_CONNECTIONS)",
                                value=r.max_connections)
        yield CounterMetricFamily(PREFIX + "bedrock_connection_waits",
                                  "Bedrock calls that had to wait for a free connection", value=r.waits)


class ProxyMetrics:
    """The app's metrics. ``observe(event)`` is a UsageRecorder observer; ``watch(recorder)``
    exports its queue counters; ``render()`` -> ``(body, content_type)`` for ``/metrics``."""

    def __init__(self, registry: CollectorRegistry | None = None, *, pricing: PriceTable | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self._pricing = pricing or PriceTable()
        self._queued: deque[UsageEvent] = deque()
        r = self.registry
        r.register(_FoldFirst(self.fold))
        self.requests = Counter(PREFIX + "requests", "Finished proxy requests", ["provider", "model", "status"],
                                registry=r)
        self.fallbacks = Counter(PREFIX + "fallbacks", "Requests that fell back to Bedrock", ["reason"], registry=r)
        self.duration = Histogram(PREFIX + "request_duration_seconds", "Request latency, arrival to last byte",
                                  ["provider", "streamed"], buckets=LATENCY_BUCKETS_S, registry=r)
        self.ttft = Histogram(PREFIX + "time_to_first_token_seconds",
                              "Streamed requests: arrival to the first content_block_delta sent", ["provider"], buckets=TTFT_BUCKETS_S, registry=r)
        self.tokens = Counter(PREFIX + "tokens", "Tokens by type", ["provider", "model", "type"], registry=r)
        self.cost = Counter(PREFIX + "cost_usd", "Cost of priced requests (USD)", ["provider", "model"], registry=r)
        self.quota_rejections = Counter(PREFIX + "quota_rejections", "Requests refused by a quota or rate limit",
                                        ["scope", "limit"], registry=r)
        # Kept by InFlightMiddleware as plain counts, read at scrape time.
        self.requests_in_flight = 0
        self.streams_in_flight = 0
        Gauge(PREFIX + "in_flight_requests", "Proxy requests being served",
              registry=r).set_function(lambda: self.requests_in_flight)
        Gauge(PREFIX + "in_flight_streams", "SSE responses being streamed",
              registry=r).set_function(lambda: self.streams_in_flight)
        self.pool_exhausted = Counter(PREFIX + "upstream_pool_exhausted",
                                      "Requests that found the proxy's own connection pool to an upstream full",
                                      ["upstream"], registry=r)
        self.shutdown_cuts = Counter(PREFIX + "streams_cut_by_shutdown",
                                     "Streams still open when the shutdown grace period ended", registry=r)
        self._collector: _RecorderCollector | None = None
        self._bedrock_collector: _BedrockCollector | None = None
        self._labels: dict[str | None, str] = {}

    @property
    def pricing(self) -> PriceTable:
        """The price table whose models get their own label (set from the app's overrides)."""
        return self._pricing

    @pricing.setter
    def pricing(self, table: PriceTable) -> None:
        self._pricing = table
        self._labels = {}

    def model_label(self, model: str | None) -> str:
        """The canonical name of a priced model, else ``other`` (bounded label values)."""
        label = self._labels.get(model)
        if label is None:
            label = (canonical_model(model) or "other") if self.pricing.knows(model) else "other"
            if len(self._labels) < 4096:
                self._labels[model] = label
        return label

    def observe(self, event: UsageEvent) -> None:
        """Count one finished request (call after its cost is set): queued, folded in a batch
        (module docstring)."""
        self._queued.append(event)
        if len(self._queued) >= FOLD_AT:
            self.fold()

    def fold(self) -> None:
        """Add the queued events to the metrics (each exactly once; safe from any thread)."""
        requests: Tally[tuple[str, str, str]] = Tally()
        fallbacks: Tally[str] = Tally()
        tokens: Tally[tuple[str, str, str]] = Tally()
        cost: Tally[tuple[str, str]] = Tally()
        pool_exhausted: Tally[str] = Tally()
        shutdown_cuts = 0
        durations: dict[tuple[str, str], list[float]] = {}
        ttfts: dict[str, list[float]] = {}
        queued = self._queued
        while queued:
            try:
                event = queued.popleft()
            except IndexError:  # another thread took the last one
                break
            provider: str = event.provider
            model = self.model_label(event.model)
            requests[provider, model, str(event.status)] += 1
            if event.fallback_reason:
                fallbacks[event.fallback_reason] += 1
            durations.setdefault((provider, "true" if event.streamed else "false"), []).append(event.latency_ms / 1000)
            if event.ttft_ms is not None:
                ttfts.setdefault(provider, []).append(event.ttft_ms / 1000)
            for label, name in _TOKEN_TYPES:
                value = getattr(event, name)
                if value:
                    tokens[provider, model, label] += value
            if event.cost_usd_micros:
                cost[provider, model] += event.cost_usd_micros
            for note in event.notes:
                if (upstream := _POOL_EXHAUSTED_NOTES.get(note)) is not None:
                    pool_exhausted[upstream] += 1
                elif note == _SHUTDOWN_NOTE:
                    shutdown_cuts += 1
        for (provider, model, status), n in requests.items():
            self.requests.labels(provider, model, status).inc(n)
        for reason, n in fallbacks.items():
            self.fallbacks.labels(reason).inc(n)
        for (provider, streamed), seconds in durations.items():
            child = self.duration.labels(provider, streamed)
            for value in seconds:
                child.observe(value)
        for provider, seconds in ttfts.items():
            child = self.ttft.labels(provider)
            for value in seconds:
                child.observe(value)
        for (provider, model, label), n in tokens.items():
            self.tokens.labels(provider, model, label).inc(n)
        for (provider, model), micros in cost.items():
            self.cost.labels(provider, model).inc(micros / 1_000_000)
        for upstream, n in pool_exhausted.items():
            self.pool_exhausted.labels(upstream).inc(n)
        if shutdown_cuts:
            self.shutdown_cuts.inc(shutdown_cuts)

    def quota_rejected(self, scope: str, limit: str) -> None:
        self.quota_rejections.labels(scope, limit).inc()

    def watch(self, recorder: Any) -> None:
        """Export ``recorder``'s depth / write_failures / written / dropped (read at scrape time);
        a later call (the app's lifespan run again) switches to the new recorder."""
        if self._collector is None:
            self._collector = _RecorderCollector(recorder)
            self.registry.register(self._collector)
        else:
            self._collector.recorder = recorder

    def watch_bedrock(self, runtime: Any) -> None:
        """Export ``runtime``'s (a BedrockRuntime) connection counters at scrape time; a later
        call switches to the new runtime."""
        if self._bedrock_collector is None:
            self._bedrock_collector = _BedrockCollector(runtime)
            self.registry.register(self._bedrock_collector)
        else:
            self._bedrock_collector.runtime = runtime

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


ASGIApp = Callable[..., Any]


class InFlightMiddleware:
    """Pure ASGI middleware (streaming-safe): counts proxy requests in flight, and SSE responses
    while they stream, until the last body chunk is sent or the client goes away."""

    def __init__(self, app: ASGIApp, metrics: ProxyMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or _PROXY_PATH_MARKER not in scope.get("path", ""):
            await self.app(scope, receive, send)
            return
        streaming = False
        metrics = self.metrics

        async def tracking_send(message: dict[str, Any]) -> None:
            nonlocal streaming
            if message["type"] == "http.response.start":
                for name, value in message.get("headers") or ():
                    if name == b"content-type":
                        if value.startswith(b"text/event-stream"):
                            streaming = True
                            metrics.streams_in_flight += 1
                        break
            elif streaming and message["type"] == "http.response.body" and not message.get("more_body", False):
                streaming = False
                metrics.streams_in_flight -= 1
            await send(message)

        metrics.requests_in_flight += 1
        try:
            await self.app(scope, receive, tracking_send)
        finally:
            metrics.requests_in_flight -= 1
            if streaming:
                metrics.streams_in_flight -= 1
