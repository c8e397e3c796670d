"""QuotaAdmission: each limit trips at the right request, the 429 says which limit and when it
resets, windows reset on an injected clock, limits hold across replicas, and a store failure fails
open. Usage reaches the admission the real way: UsageRecorder -> PendingUsage -> UsageRepository."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from mongomock_motor import AsyncMongoMockClient
from starlette.datastructures import Headers

from app.auth.access import Principal
from app.errors import InvalidRequest, RateLimited
from app.proxy.request import ProxyRequest
from app.store.limits import RateCounterRepository
from app.store.usage import UsageRepository
from app.usage.events import UsageEvent
from app.usage.quotas import PendingUsage, QuotaAdmission, merge_limits
from app.usage.recorder import UsageRecorder
from tests.usage.faults import Faults


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class Replica:
    """One proxy replica's quota machinery on a shared database."""

    def __init__(self, db: Any, clock: Clock, *, cache_ttl_s: float = 1.0) -> None:
        self.pending = PendingUsage()
        usage = UsageRepository(db)
        self.recorder = UsageRecorder(usage.write_batch, ledger=self.pending)
        self.admission = QuotaAdmission(usage, RateCounterRepository(db), self.pending, clock=clock,
                                        cache_ttl_s=cache_ttl_s)
        self.clock = clock

    async def serve(self, principal: Principal, *, tokens: int = 0, cost_usd_micros: int = 0,
                    endpoint: str = "messages") -> None:
        """Admit a request, then record its usage as the Forwarder would when it finishes."""
        await self.admission.check(request(principal, endpoint))
        self.recorder.record(UsageEvent(
            user_id=principal.user_id, access_key_id=principal.access_key_id, provider="anthropic",
            model="claude-sonnet-4-5", input_tokens=tokens, cost_usd_micros=cost_usd_micros, time=self.clock()))


def request(principal: Principal, endpoint: str = "messages") -> ProxyRequest:
    return ProxyRequest(endpoint=endpoint, path="/v1/" + endpoint, query="", raw_headers=[],  # type: ignore[arg-type]
                        headers=Headers(), body=b"{}", params={}, principal=principal, client_ip="127.0.0.1")


def principal(key: str = "ak_1", user: str = "usr_1", *, key_limits: dict[str, Any] | None = None,
              user_limits: dict[str, Any] | None = None) -> Principal:
    return Principal(access_key_id=key, user_id=user, key_prefix="sk-ccp-x", key_limits=key_limits or {},
                     user_limits=user_limits or {})


@pytest.fixture
def db() -> Any:
    return AsyncMongoMockClient(tz_aware=True)["quotas"]


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2025, 1, 31, 23, 58, 45, tzinfo=UTC))


async def test_requests_per_minute_trips_on_the_fourth_and_resets_next_minute(db: Any, clock: Clock) -> None:
    replica = Replica(db, clock)
    p = principal(key_limits={"requests_per_minute": 3})
    for _ in range(3):
        await replica.serve(p)
    with pytest.raises(RateLimited) as caught:
        await replica.serve(p)
    error = caught.value
    assert (error.status_code, error.error_type) == (429, "rate_limit_error")
    assert error.headers["retry-after"] == "15"  # 23:58:45 -> 23:59:00
    assert "access key ak_1" in error.message and "requests_per_minute" in error.message
    assert "resets at 2025-01-31T23:59:00Z" in error.message
    clock.advance(seconds=15)
    await replica.serve(p)


async def test_request_limits_hold_across_replicas(db: Any, clock: Clock) -> None:
    a, b = Replica(db, clock), Replica(db, clock)
    p = principal(user_limits={"requests_per_minute": 3})
    await a.serve(p)
    await b.serve(p)
    await a.serve(p)
    with pytest.raises(RateLimited, match="user usr_1: requests_per_minute"):
        await b.serve(p)


async def test_tokens_per_day_admits_until_used_reaches_the_limit(db: Any, clock: Clock) -> None:
    replica = Replica(db, clock)
    p = principal(key_limits={"tokens_per_day": 100})
    await replica.serve(p, tokens=30)
    await replica.serve(p, tokens=30)
    await replica.recorder.flush()  # half of it now in the store, half still pending: counted once
    await replica.serve(p, tokens=30)
    await replica.serve(p, tokens=30)  # 90 used before it: admitted, and crosses the limit
    with pytest.raises(RateLimited) as caught:
        await replica.serve(p, tokens=30)
    assert "tokens_per_day limit reached (120 of 100 tokens used today (UTC))" in caught.value.message
    assert caught.value.headers["retry-after"] == str(75)  # to midnight UTC
    clock.advance(seconds=75)
    await replica.serve(p, tokens=30)


async def test_other_replicas_usage_counts_once_written(db: Any, clock: Clock) -> None:
    # No read cache here, to show what each replica can know at each step.
    a, b = Replica(db, clock, cache_ttl_s=0), Replica(db, clock, cache_ttl_s=0)
    p = principal(user_limits={"tokens_per_minute": 100})
    await a.serve(p, tokens=90)
    await a.recorder.flush()
    await b.serve(p, tokens=30)  # b sees a's 90 (written): admitted
    with pytest.raises(RateLimited, match="tokens_per_minute"):
        await b.serve(p)  # 90 written + 30 of its own pending
    await a.serve(p)  # a cannot see b's unwritten 30 yet
    await b.recorder.flush()
    with pytest.raises(RateLimited, match="tokens_per_minute"):
        await a.serve(p)


async def test_cost_per_month_and_the_month_reset(db: Any, clock: Clock) -> None:
    replica = Replica(db, clock)
    p = principal(key_limits={"cost_usd_per_month": 0.01})  # 10,000 micro-USD
    await replica.serve(p, tokens=1, cost_usd_micros=6000)
    await replica.serve(p, tokens=1, cost_usd_micros=6000)
    with pytest.raises(RateLimited) as caught:
        await replica.serve(p)
    assert "cost_usd_per_month limit reached ($0.01 of $0.01 used this month (UTC))" in caught.value.message
    clock.advance(minutes=2)  # January -> February
    await replica.serve(p)


async def test_a_users_limit_covers_all_of_its_keys(db: Any, clock: Clock) -> None:
    replica = Replica(db, clock)
    limits = {"tokens_per_month": 50}
    await replica.serve(principal("ak_1", user_limits=limits), tokens=50)
    with pytest.raises(RateLimited, match="user usr_1"):
        await replica.serve(principal("ak_2", user_limits=limits))
    await replica.serve(principal("ak_3", user="usr_2", user_limits=limits))


async def test_count_tokens_is_not_limited(db: Any, clock: Clock) -> None:
    replica = Replica(db, clock)
    p = principal(key_limits={"requests_per_minute": 1})
    for _ in range(3):
        await replica.serve(p, endpoint="count_tokens")
    await replica.serve(p)


async def test_a_store_failure_fails_open_then_counts_locally(clock: Clock) -> None:
    db = AsyncMongoMockClient(tz_aware=True)["quotas"]
    faults = Faults(collections=("rate_counters",))
    faults.down = True
    replica = Replica(faults.wrap(db), clock)
    p = principal(key_limits={"requests_per_minute": 2})
    await replica.serve(p)
    await replica.serve(p)
    with pytest.raises(RateLimited):
        await replica.serve(p)


async def test_status_reports_use_and_remaining(db: Any, clock: Clock) -> None:
    replica = Replica(db, clock)
    p = principal(key_limits={"requests_per_minute": 10, "tokens_per_day": 1000},
                  user_limits={"cost_usd_per_day": 2})
    await replica.serve(p, tokens=400, cost_usd_micros=500_000)
    status = await replica.admission.status(p)
    assert status["access_key"]["requests_per_minute"]["used"] == 1
    assert status["access_key"]["tokens_per_day"] == {"limit": 1000, "used": 400, "remaining": 600,
                                                     "unit": "tokens", "resets_at": "2025-02-01T00:00:00+00:00"}
    assert status["user"]["cost_usd_per_day"]["used"] == 0.5


def test_merge_limits_validates_and_clears() -> None:
    current = {"requests_per_minute": 10, "tokens_per_day": 5000}
    assert merge_limits(current, {"tokens_per_day": None, "cost_usd_per_day": 2.5}) == {
        "requests_per_minute": 10, "cost_usd_per_day": 2.5}
    assert merge_limits(current, None) == {}
    assert merge_limits(current, {"requests_per_minute": 20.0}) == {"requests_per_minute": 20, "tokens_per_day": 5000}
    for bad, message in [({"requests_per_hour": 1}, "unknown field"), ({"tokens_per_day": 0}, "whole number >= 1"),
                         ({"tokens_per_day": 1.5}, "whole number"), ({"requests_per_minute": True}, "number or null"),
                         ({"cost_usd_per_day": -1}, "> 0"), ({"cost_usd_per_day": "5"}, "number or null")]:
        with pytest.raises(InvalidRequest, match=message):
            merge_limits(current, bad)
