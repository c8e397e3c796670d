"""Spend caps enforced on /v1/messages through the real app: 429 billing_error with the reset time
and no retry, count_tokens exempt, both key forms, shared team budgets, 200 concurrent requests
against a 1-cent cap, and fail-open / fail-closed on store trouble."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from app.governance.periods import period_end, period_start
from tests.governance.conftest import join, new_group, set_cap
from tests.usage.conftest import CLIENT_CREDENTIAL, MODEL, in_process_proxy, usage_settings
from tests.usage.test_quotas_concurrency import CONCURRENCY, BoundedUpstream, send

NOW = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)


def freeze(proxy: object) -> None:
    """A still clock at noon UTC, so a burst never straddles midnight."""
    proxy.services.governance.enforcement.clock = lambda: NOW  # type: ignore[attr-defined]


async def spent(proxy: object, user_id: str) -> tuple[int, int]:
    """(admitted requests, their recorded cost in micro-USD)."""
    await proxy.services.recorder.flush()  # type: ignore[attr-defined]
    n = cost = 0
    async for e in proxy.services.store.db["usage_events"].find({"user_id": user_id, "status": 200}):  # type: ignore[attr-defined]
        n, cost = n + 1, cost + e["cost_usd_micros"]
    return n, cost


async def test_over_the_cap_is_a_billing_error_that_says_when_it_resets(monkeypatch: pytest.MonkeyPatch) -> None:
    async with in_process_proxy(monkeypatch) as proxy:
        freeze(proxy)
        user_id, _, key = await proxy.new_user_key()
        await set_cap(proxy, {"type": "user", "user_id": user_id}, "0", "daily",
                      blocked_message="Ask #platform for more budget.")
        before = proxy.upstream.requests
        for in_path in (False, True):
            response = await proxy.message(key, 1, in_path=in_path)
            assert response.status_code == 429
            error = response.json()["error"]
            assert error["type"] == "billing_error"
            assert error["message"].startswith("spend limit reached")
            assert error["message"].endswith("Ask #platform for more budget.")
            assert response.headers["x-should-retry"] == "false"
            reset = period_end(period_start(NOW, "daily"), "daily")
            assert int(response.headers["retry-after"]) == int((reset - NOW).total_seconds())
        assert proxy.upstream.requests == before  # refused before any upstream call
        counted = await proxy.client.post("/v1/messages/count_tokens", headers={
            "x-api-key": CLIENT_CREDENTIAL, "x-proxy-key": key},
            json={"model": MODEL, "messages": [{"role": "user", "content": "n=1"}]})
        assert counted.status_code == 200  # count_tokens is exempt
        await proxy.services.recorder.flush()
        event = await proxy.services.store.db["usage_events"].find_one({"user_id": user_id, "status": 429})
        assert event is not None  # the refusal is still one usage event


async def test_cap_admits_until_reached_then_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    async with in_process_proxy(monkeypatch) as proxy:
        freeze(proxy)
        user_id, _, key = await proxy.new_user_key()
        await set_cap(proxy, {"type": "organization"}, "1", "monthly")
        statuses = [(await proxy.message(key, n)).status_code for n in range(40)]
        assert 200 in statuses and statuses[-1] == 429
        first_refusal = statuses.index(429)
        assert set(statuses[first_refusal:]) == {429}  # blocked for the rest of the period
        _, cost = await spent(proxy, user_id)
        assert 10_000 <= cost  # it really reached the cap before being blocked


async def test_user_cap_beats_group_and_org_caps(monkeypatch: pytest.MonkeyPatch) -> None:
    async with in_process_proxy(monkeypatch) as proxy:
        freeze(proxy)
        user_id, _, key = await proxy.new_user_key()
        await new_group(proxy, "contractors")
        await join(proxy, "contractors", user_id)
        await set_cap(proxy, {"type": "organization"}, "0", "daily")
        await set_cap(proxy, {"type": "rbac_group", "rbac_group_id": "contractors"}, "0", "daily")
        assert (await proxy.message(key, 1)).status_code == 429
        await set_cap(proxy, {"type": "user", "user_id": user_id}, "10000", "daily")
        assert (await proxy.message(key, 2)).status_code == 200


async def test_shared_team_budget_counts_the_whole_group(monkeypatch: pytest.MonkeyPatch) -> None:
    async with in_process_proxy(monkeypatch) as proxy:
        freeze(proxy)
        group = await new_group(proxy, "ml")
        a, _, key_a = await proxy.new_user_key("A")
        b, _, key_b = await proxy.new_user_key("B")
        _, _, key_c = await proxy.new_user_key("C")
        await join(proxy, "ml", a)
        await join(proxy, "ml", b)
        await set_cap(proxy, {"type": "rbac_group_shared", "rbac_group_id": group["id"]}, "1", "daily")
        while (response := await proxy.message(key_a, 1)).status_code == 200:
            pass
        assert "shared budget" in response.json()["error"]["message"]
        assert (await proxy.message(key_b, 2)).status_code == 429  # B never spent: the group did
        assert (await proxy.message(key_c, 3)).status_code == 200  # not in the group


async def test_two_hundred_concurrent_requests_against_a_one_cent_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    async with in_process_proxy(monkeypatch, upstream=BoundedUpstream()) as proxy:
        freeze(proxy)
        user_id, _, key = await proxy.new_user_key()
        await set_cap(proxy, {"type": "user", "user_id": user_id}, "1", "daily")
        responses = await asyncio.gather(*(send(proxy, key, n) for n in range(CONCURRENCY)))
        refused = [r for r in responses if r.status_code != 200]
        assert refused and {r.status_code for r in refused} == {429}
        assert {r.json()["error"]["type"] for r in refused} == {"billing_error"}
        admitted, cost = await spent(proxy, user_id)
        one_request = max([e["cost_usd_micros"] async for e in proxy.services.store.db["usage_events"].find(
            {"user_id": user_id, "status": 200})])
        print(f"\n1-cent cap, {CONCURRENCY} concurrent: admitted {admitted}, spend {cost} micro-USD "
              f"(cap 10000, overshoot {max(0, cost - 10_000)}, one request <= {one_request})")
        assert cost <= 10_000 + one_request


async def test_fail_open_by_default_and_closed_when_set(monkeypatch: pytest.MonkeyPatch) -> None:
    async with in_process_proxy(monkeypatch) as proxy:
        user_id, _, key = await proxy.new_user_key()
        await set_cap(proxy, {"type": "user", "user_id": user_id}, "10000", "daily")
        proxy.services.governance.cache.stale = True  # the last reload of the tables failed
        assert (await proxy.message(key, 1)).status_code == 200
    async with in_process_proxy(monkeypatch, usage_settings(spend_limits_fail_closed=True)) as proxy:
        user_id, _, key = await proxy.new_user_key()
        assert (await proxy.message(key, 1)).status_code == 200
        proxy.services.governance.cache.stale = True
        response = await proxy.message(key, 2)
        assert response.status_code == 503 and response.json()["error"]["type"] == "overloaded_error"


async def test_periods_follow_the_org_time_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    async with in_process_proxy(monkeypatch, usage_settings(org_time_zone="America/New_York")) as proxy:
        proxy.services.governance.enforcement.clock = lambda: NOW
        user_id, _, key = await proxy.new_user_key()
        await set_cap(proxy, {"type": "user", "user_id": user_id}, "0", "daily")
        response = await proxy.message(key, 1)
        local_midnight = period_end(period_start(NOW, "daily", proxy.services.governance.spend.tz), "daily",
                                    proxy.services.governance.spend.tz)
        assert local_midnight.hour in (4, 5)  # 00:00 in New York is 04:00 or 05:00 UTC
        assert int(response.headers["retry-after"]) == int((local_midnight - NOW).total_seconds())
        assert local_midnight - NOW < timedelta(days=1)


async def test_a_request_whose_period_ends_while_it_waits_is_claimed_in_the_next_period(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Under load a request can compute its day, then reach its counter after midnight: it is
    counted in the new day, not refused (the quotas' rule, app/usage/lease_book.py WINDOW_ENDED)."""
    midnight = NOW.replace(hour=0) + timedelta(days=1)
    calls = 0

    def late_clock() -> datetime:  # the first reading is before midnight, every later one after it
        nonlocal calls
        calls += 1
        return midnight - timedelta(milliseconds=100) if calls == 1 else midnight + timedelta(seconds=1)

    async with in_process_proxy(monkeypatch) as proxy:
        user_id, _, key = await proxy.new_user_key()
        await set_cap(proxy, {"type": "user", "user_id": user_id}, "5", "daily")
        proxy.services.governance.enforcement.clock = late_clock  # type: ignore[attr-defined]
        response = await proxy.message(key, 1)
        assert response.status_code == 200, response.text
        ids = [d["_id"] async for d in proxy.services.store.db["quota_counters"].find({"_id": {"$regex": "^spend:"}})]
        assert ids == [f"spend:user:{user_id}:daily:{midnight:%Y%m%dT%H%M}"]
