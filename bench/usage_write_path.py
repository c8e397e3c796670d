"""Benchmark of the usage write path and of the quota check's cost on the request path.

    .venv/bin/python bench/usage_write_path.py [--events 20000] [--requests 400]

1. Write path: ``UsageRecorder.record`` (on the request path: pricing, metrics, queue) and the
   background writer (insert events, fold into 15 buckets each, mark) into the *embedded store*
   (mongomock-motor, in process). Prints record() cost (us/event) and events written per second.
   Against MongoDB/DocumentDB the writer's numbers depend on the network and the server instead.
2. The proxy's own latency (the upstream is an in-process ``httpx.MockTransport`` that answers at
   once) per request, sequentially, with quotas off, on with no limits set, and on with limits set
   on both the key and the user (requests_per_minute + tokens/cost budgets): median, p95, and
   the ratio to quotas off. Embedded store again, so a store round trip costs microseconds here
   and about a millisecond on a real network.
Loops are bounded by the counts given; nothing runs forever.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import functools
import json
import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import app.main
from app.config import Settings
from app.proxy.anthropic import AnthropicUpstream
from app.store.mongo import open_store
from app.store.usage_write import UsageWriter
from app.records.events import UsageEvent
from app.usage.metrics import ProxyMetrics
from app.usage.pricing import PriceTable
from app.usage.ledger import PendingUsage
from app.usage.recorder import UsageRecorder

PASSWORD = "bench-admin-password-123"
MODELS = ("claude-sonnet-4-5-20250929", "claude-opus-4-5-20251101", "claude-haiku-4-5-20251001")


async def bench_write_path(n_events: int, *, users: int, keys_per_user: int, models: int) -> dict[str, float]:
    """Record ``n_events`` spread over ``users`` x ``keys_per_user`` keys x ``models`` models, then
    let the recorder write them (batches of 500). Each distinct (key, model) in a batch costs 15
    bucket upserts (5 granularities x global/user/key), so the spread drives the store work."""
    store = open_store(None, "bench")
    repo = UsageWriter(store.db)
    metrics = ProxyMetrics()
    recorder = UsageRecorder(repo.write_batch, batch_size=500, flush_interval_s=0.05,
                             price=PriceTable().cost_usd_micros, observers=(metrics.observe,), ledger=PendingUsage())
    events = []
    for i in range(n_events):
        key = i % (users * keys_per_user)
        events.append(UsageEvent(user_id=f"usr_{key % users}", access_key_id=f"ak_{key}", provider="anthropic",
                                 model=MODELS[i % models], input_tokens=100 + i % 50, output_tokens=20,
                                 cache_read_input_tokens=5000, cache_creation_input_tokens=300, latency_ms=1000))
    t0 = time.perf_counter()
    for event in events:
        recorder.record(event)
    t_record = time.perf_counter() - t0
    recorder.start()
    t1 = time.perf_counter()
    await recorder.aclose(timeout_s=600)
    t_write = time.perf_counter() - t1
    assert recorder.written == n_events
    return {"events": n_events, "record_us_per_event": t_record / n_events * 1e6,
            "written_per_s": n_events / t_write,
            "buckets": await store.db["usage_buckets"].count_documents({})}


class InstantUpstream:
    async def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        return httpx.Response(200, json={
            "id": "msg_1", "type": "message", "role": "assistant", "model": body["model"],
            "content": [{"type": "text", "text": "ok"}], "stop_reason": "end_turn",
            "usage": {"input_tokens": 10, "output_tokens": 5, "cache_read_input_tokens": 100}})


async def proxy_latencies(n_requests: int, *, quotas: bool, limits: bool) -> list[float]:
    app.main.AnthropicUpstream = functools.partial(  # type: ignore[attr-defined]
        AnthropicUpstream, transport=httpx.MockTransport(InstantUpstream()))
    settings = Settings(_env_file=None, anthropic_base_url="http://anthropic.bench", secret_key="b" * 40,
                        admin_password=PASSWORD, quotas_enabled=quotas, default_fallback_policy="anthropic_only")
    application = app.main.create_app(settings)
    latencies: list[float] = []
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://proxy.bench") as client:
            basic = base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
            token = (await client.post("/admin/auth/login", headers={"authorization": f"Basic {basic}"})).json()
            admin = {"authorization": f"Bearer {token['access_token']}"}
            user = (await client.post("/admin/users", json={"name": "bench"}, headers=admin)).json()
            key = (await client.post(f"/admin/users/{user['id']}/access-keys", json={}, headers=admin)).json()
            if limits:
                await client.patch(f"/admin/access-keys/{key['id']}", headers=admin, json={"limits": {
                    "requests_per_minute": 10**9, "tokens_per_minute": 10**12, "tokens_per_day": 10**12}})
                await client.patch(f"/admin/users/{user['id']}", headers=admin, json={"limits": {
                    "requests_per_minute": 10**9, "cost_usd_per_month": 10**6}})
            body = {"model": MODELS[0], "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
            headers = {"x-proxy-key": key["key"], "x-api-key": "sk-ant-bench"}
            for i in range(n_requests + 50):  # the first 50 warm caches and pools up
                t0 = time.perf_counter()
                response = await client.post("/v1/messages", json=body, headers=headers)
                elapsed = time.perf_counter() - t0
                assert response.status_code == 200, response.text
                if i >= 50:
                    latencies.append(elapsed * 1000)
    return latencies


def summary(values: list[float]) -> tuple[float, float]:
    values = sorted(values)
    return statistics.median(values), values[int(len(values) * 0.95) - 1]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5_000)
    parser.add_argument("--requests", type=int, default=400)
    args = parser.parse_args()
    import logging

    logging.disable(logging.WARNING)
    for label, shape in (("narrow: 10 users x 1 key x 1 model", dict(users=10, keys_per_user=1, models=1)),
                         ("wide: 50 users x 2 keys x 3 models", dict(users=50, keys_per_user=2, models=3))):
        w = await bench_write_path(args.events, **shape)
        print(f"write path, embedded mongomock store, {label}: {w['events']} events, "
              f"record() {w['record_us_per_event']:.1f} us/event, written {w['written_per_s']:.0f} events/s "
              f"({w['buckets']} bucket documents)")
    base_median, base_p95 = summary(await proxy_latencies(args.requests, quotas=False, limits=False))
    print(f"proxy latency, quotas off:            median {base_median:.3f} ms, p95 {base_p95:.3f} ms")
    for label, limits in (("quotas on, no limits set:", False), ("quotas on, key+user limits:", True)):
        median, p95 = summary(await proxy_latencies(args.requests, quotas=True, limits=limits))
        print(f"proxy latency, {label:<23} median {median:.3f} ms, p95 {p95:.3f} ms, "
              f"ratio to off {median / base_median:.2f}x (p95 {p95 / base_p95:.2f}x)")


if __name__ == "__main__":
    asyncio.run(main())
