"""The whole write path through the proxy: many concurrent requests, a store outage while requests
flow, and graceful shutdown. Totals in every granularity must equal what the upstream reported."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.records.buckets import GRANULARITIES, Retention
from app.usage.query import usage_report
from tests.usage.conftest import in_process_proxy, usage_for, usage_settings
from tests.usage.faults import Faults

FIELDS = ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")


def expected(ns: list[int]) -> dict[str, int]:
    total = dict.fromkeys(FIELDS, 0) | {"requests": len(ns), "cache_creation_1h_input_tokens": 0}
    for n in ns:
        usage = usage_for(n)
        for name in FIELDS:
            total[name] += usage[name]
        total["cache_creation_1h_input_tokens"] += usage["cache_creation"]["ephemeral_1h_input_tokens"]
    return total


def picked(totals: dict[str, Any]) -> dict[str, int]:
    return {name: totals[name] for name in (*FIELDS, "requests", "cache_creation_1h_input_tokens")}


async def assert_reports(db: Any, start: datetime, by_key: dict[str, list[int]], key_user: dict[str, str]) -> None:
    end = datetime.now(UTC) + timedelta(minutes=1)
    everything = [n for ns in by_key.values() for n in ns]
    by_user: dict[str, list[int]] = defaultdict(list)
    for key_id, ns in by_key.items():
        by_user[key_user[key_id]].extend(ns)
    retention = Retention()
    for granularity in GRANULARITIES:
        for tz in ("UTC", "Asia/Seoul"):
            report = await usage_report(db, start=start, end=end, granularity=granularity, tz=tz, retention=retention)
            assert picked(report["totals"]) == expected(everything), (granularity, tz)
            assert report["totals"]["errors"] == 0 and report["totals"]["cost_unknown_requests"] == 0
        for user_id, ns in by_user.items():
            report = await usage_report(db, start=start, end=end, granularity=granularity, user_id=user_id)
            assert picked(report["totals"]) == expected(ns), (granularity, user_id)
        for key_id, ns in by_key.items():
            report = await usage_report(db, start=start, end=end, granularity=granularity, access_key_id=key_id)
            assert picked(report["totals"]) == expected(ns), (granularity, key_id)


@pytest.mark.timeout(120)
async def test_two_thousand_concurrent_requests_are_counted_exactly(monkeypatch: pytest.MonkeyPatch) -> None:
    start = datetime.now(UTC) - timedelta(minutes=1)
    async with in_process_proxy(monkeypatch) as proxy:
        keys: list[tuple[str, str, str]] = []  # (user_id, key_id, key)
        for name in ("Ada", "Bo", "Cy"):
            user_id, key_id, key = await proxy.new_user_key(name)
            second_id, second = await proxy.new_key(user_id)
            keys += [(user_id, key_id, key), (user_id, second_id, second)]
        # A generous limit on one key, so admission (and its store round trips) is on the path too.
        await proxy.admin("PATCH", f"/admin/access-keys/{keys[0][1]}", json={"limits": {
            "requests_per_minute": 100_000, "tokens_per_day": 10**12}})
        by_key: dict[str, list[int]] = defaultdict(list)

        refusals: list[str] = []

        async def one(n: int) -> int:
            user_id, key_id, key = keys[n % len(keys)]
            by_key[key_id].append(n)
            response = await proxy.message(key, n, stream=n % 2 == 0, in_path=n % 3 == 0)
            if response.status_code != 200:
                refusals.append(f"{response.status_code} {response.text[:300]}")
            return response.status_code

        statuses = await asyncio.gather(*(one(n) for n in range(2000)))
        assert set(statuses) == {200} and proxy.upstream.requests == 2000, refusals[:3]
        await proxy.services.recorder.flush()
        assert proxy.services.recorder.written == 2000
        await assert_reports(proxy.services.store.db, start, by_key, {k: u for u, k, _ in keys})
        # The admin API says the same as the query function.
        params = {"from": start.isoformat(), "granularity": "day"}
        api = (await proxy.admin("GET", "/admin/usage", params=params)).json()
        assert picked(api["totals"]) == expected(list(range(2000)))


@pytest.mark.timeout(120)
async def test_a_store_outage_delays_usage_and_shutdown_flushes_it(monkeypatch: pytest.MonkeyPatch) -> None:
    start = datetime.now(UTC) - timedelta(minutes=1)
    faults = Faults()
    raw: dict[str, Any] = {}

    def wrap(db: Any) -> Any:
        raw["db"] = db
        return faults.wrap(db)

    by_key: dict[str, list[int]] = defaultdict(list)
    async with in_process_proxy(monkeypatch, usage_settings(usage_flush_interval_s=0.02), wrap_db=wrap) as proxy:
        user_id, key_id, key = await proxy.new_user_key()
        recorder = proxy.services.recorder
        faults.down = True
        n = 0
        # Requests keep flowing and succeeding while every usage write fails, over many retries.
        while recorder.write_failures < 12:
            wave = list(range(n, n + 25))
            n += 25
            responses = await asyncio.gather(*(proxy.message(key, i, stream=i % 2 == 0) for i in wave))
            assert {r.status_code for r in responses} == {200}
            by_key[key_id].extend(wave)
            await asyncio.sleep(0.05)
            assert n < 5000, "the recorder never retried"
        assert await raw["db"]["usage_buckets"].count_documents({}) == 0
        assert recorder.depth == n
        # The store comes back; the first write after it loses its acknowledgement.
        faults.heal()
        faults.lose_ack_at = faults.writes + 1
        # Leaving the block runs the lifespan's shutdown, which must flush the queue.
    assert recorder.depth == 0 and recorder.written == n
    assert faults.injected > 12
    await assert_reports(raw["db"], start, by_key, {key_id: user_id})
    assert await raw["db"]["usage_events"].count_documents({"user_id": user_id}) == n
