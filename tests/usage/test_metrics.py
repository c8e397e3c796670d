"""ProxyMetrics: what one usage event adds, bounded model labels, the recorder's counters at scrape
time, and the in-flight gauges kept by the pure ASGI middleware around a stream."""

from __future__ import annotations

import asyncio
from typing import Any

from app.records.events import UsageEvent
from app.usage.metrics import FOLD_AT, InFlightMiddleware, ProxyMetrics
from app.usage.recorder import UsageRecorder


def sample(metrics: ProxyMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_an_event_counts_request_tokens_cost_latency_and_fallback() -> None:
    metrics = ProxyMetrics()
    metrics.observe(UsageEvent(user_id="u", access_key_id="k", provider="bedrock",
                               model="claude-sonnet-4-5-20250929", input_tokens=100, output_tokens=20,
                               cache_read_input_tokens=1000, status=200, streamed=True, latency_ms=2500,
                               ttft_ms=400, fallback_reason="rate_limited", cost_usd_micros=1_500_000))
    model = "claude-sonnet-4-5"
    assert sample(metrics, "claude_proxy_requests_total", provider="bedrock", model=model, status="200") == 1
    assert sample(metrics, "claude_proxy_fallbacks_total", reason="rate_limited") == 1
    assert sample(metrics, "claude_proxy_tokens_total", provider="bedrock", model=model, type="cache_read") == 1000
    assert sample(metrics, "claude_proxy_tokens_total", provider="bedrock", model=model, type="output") == 20
    assert sample(metrics, "claude_proxy_cost_usd_total", provider="bedrock", model=model) == 1.5
    assert sample(metrics, "claude_proxy_request_duration_seconds_bucket", provider="bedrock", streamed="true",
                  le="2.5") == 1
    assert sample(metrics, "claude_proxy_time_to_first_token_seconds_bucket", provider="bedrock", le="0.25") == 0
    assert sample(metrics, "claude_proxy_time_to_first_token_seconds_bucket", provider="bedrock", le="0.5") == 1


def test_events_are_folded_in_batches_each_counted_once_and_the_queue_stays_bounded() -> None:
    metrics = ProxyMetrics()
    total = 2 * FOLD_AT + 5
    for i in range(total):
        metrics.observe(UsageEvent(user_id="u", access_key_id="k", provider="anthropic", model="claude-sonnet-4-5",
                                   output_tokens=2, status=200 if i % 2 else 429, latency_ms=100,
                                   notes=["shutdown"] if i == 0 else []))
        assert len(metrics._queued) < FOLD_AT  # folded without a scrape once FOLD_AT are queued
    count = sum(sample(metrics, "claude_proxy_requests_total", provider="anthropic", model="claude-sonnet-4-5",
                       status=status) or 0 for status in ("200", "429"))
    assert count == total
    assert sample(metrics, "claude_proxy_tokens_total", provider="anthropic", model="claude-sonnet-4-5",
                  type="output") == 2 * total
    assert sample(metrics, "claude_proxy_request_duration_seconds_count", provider="anthropic",
                  streamed="false") == total
    assert sample(metrics, "claude_proxy_streams_cut_by_shutdown_total") == 1
    assert sample(metrics, "claude_proxy_requests_total", provider="anthropic", model="claude-sonnet-4-5",
                  status="200") == total // 2  # a second read adds nothing


def test_unknown_models_share_one_label() -> None:
    metrics = ProxyMetrics()
    for model in ("my-model-1", "my-model-2", None):
        metrics.observe(UsageEvent(user_id=None, access_key_id=None, provider="anthropic", model=model, status=400))
    assert sample(metrics, "claude_proxy_requests_total", provider="anthropic", model="other", status="400") == 3


def test_separate_apps_have_separate_registries() -> None:
    a, b = ProxyMetrics(), ProxyMetrics()
    a.quota_rejected("key", "requests_per_minute")
    assert sample(a, "claude_proxy_quota_rejections_total", scope="key", limit="requests_per_minute") == 1
    assert sample(b, "claude_proxy_quota_rejections_total", scope="key", limit="requests_per_minute") is None


async def test_recorder_counters_are_read_at_scrape_time() -> None:
    async def failing(_: Any) -> None:
        raise ConnectionError("down")

    metrics = ProxyMetrics()
    recorder = UsageRecorder(failing, queue_max=1, max_backoff_s=0.001)
    metrics.watch(recorder)
    recorder.record(UsageEvent(user_id="u", access_key_id="k", provider="anthropic", model="m"))
    recorder.record(UsageEvent(user_id="u", access_key_id="k", provider="anthropic", model="m"))
    recorder.write_failures = 3
    assert sample(metrics, "claude_proxy_usage_queue_depth") == 1
    assert sample(metrics, "claude_proxy_usage_events_dropped_total") == 1
    assert sample(metrics, "claude_proxy_usage_write_failures_total") == 3
    assert b"claude_proxy_usage_events_written_total 0.0" in metrics.render()[0]


async def test_in_flight_gauges_follow_a_stream_to_its_end() -> None:
    metrics = ProxyMetrics()
    release = asyncio.Event()
    seen_during: list[tuple[float | None, float | None]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")]})
        await send({"type": "http.response.body", "body": b"event: ping\n\n", "more_body": True})
        seen_during.append((sample(metrics, "claude_proxy_in_flight_requests"),
                            sample(metrics, "claude_proxy_in_flight_streams")))
        await release.wait()
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(_: dict[str, Any]) -> None:
        return None

    middleware = InFlightMiddleware(app, metrics)
    task = asyncio.create_task(middleware({"type": "http", "path": "/v1/messages"}, receive, send))
    while not seen_during:
        await asyncio.sleep(0)
    assert seen_during == [(1.0, 1.0)]
    release.set()
    await task
    assert sample(metrics, "claude_proxy_in_flight_requests") == 0
    assert sample(metrics, "claude_proxy_in_flight_streams") == 0
    # A client that goes away mid-stream still brings the gauges back down.
    release.clear()
    task = asyncio.create_task(middleware({"type": "http", "path": "/ak/k/v1/messages"}, receive, send))
    while len(seen_during) < 2:
        await asyncio.sleep(0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert sample(metrics, "claude_proxy_in_flight_streams") == 0
    assert sample(metrics, "claude_proxy_in_flight_requests") == 0
