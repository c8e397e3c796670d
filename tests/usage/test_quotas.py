"""QuotaAdmission with real leases on a mongomock store: each limit trips at the right request, the
429 says which limit and when it resets, windows reset on an injected clock, a reservation holds the
estimate until the request settles (or is released), limits hold across replicas, an expired lease
is given back or reclaimed, and a store failure fails open. Usage is recorded the real way
(UsageRecorder -> PendingUsage -> UsageRepository) and settled as the Forwarder's finish() does."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from mongomock_motor import AsyncMongoMockClient
from starlette.datastructures import Headers

from app.auth.access import Principal
from app.errors import InvalidRequest, RateLimited
from app.proxy.request import ProxyRequest
from app.store.leases import LeaseRepository
from app.store.usage import UsageRepository
from app.usage.admission import QuotaAdmission
from app.usage.estimate import estimate_request, reservation_cost
from app.usage.events import UsageEvent
from app.usage.lease_book import LeaseBook
from app.usage.ledger import PendingUsage
from app.usage.limits import merge_limits
from app.usage.pricing import PriceTable
from app.usage.recorder import UsageRecorder
from tests.usage.faults import Faults

MODEL = "claude-sonnet-4-5"


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class Replica:
    """One proxy replica's quota machinery on a shared database."""

    def __init__(self, db: Any, clock: Clock, *, holder: str | None = None, **book: Any) -> None:
        self.pending = PendingUsage()
        usage = UsageRepository(db)
        self.recorder = UsageRecorder(usage.write_batch, ledger=self.pending)
        self.book = LeaseBook(LeaseRepository(db), clock=clock, holder=holder, **book)
        self.admission = QuotaAdmission(usage, self.book, self.pending, pricing=PriceTable(), clock=clock)
        self.clock = clock

    async def admit(self, principal: Principal, *, max_tokens: int = 10, endpoint: str = "messages",
                    model: str = MODEL) -> ProxyRequest:
        preq = request(principal, endpoint, max_tokens=max_tokens, model=model)
        await self.admission.check(preq)
        return preq

    def finish(self, preq: ProxyRequest, *, tokens: int = 0, cost_usd_micros: int | None = 0) -> None:
        """Record the usage and settle, as Forwarder.finish does when the request ends."""
        event = UsageEvent(user_id=preq.principal.user_id, access_key_id=preq.principal.access_key_id,
                           provider="anthropic", model=preq.model, input_tokens=tokens,
                           cost_usd_micros=cost_usd_micros, time=self.clock())
        self.recorder.record(event)
        if preq.reservation is not None:
            preq.reservation.settle(event)

    async def serve(self, principal: Principal, *, tokens: int = 0, cost_usd_micros: int = 0, **kw: Any) -> None:
        self.finish(await self.admit(principal, **kw), tokens=tokens, cost_usd_micros=cost_usd_micros)


def request(principal: Principal, endpoint: str = "messages", *, max_tokens: int = 10,
            model: str = MODEL) -> ProxyRequest:
    params = {"model": model, "max_tokens": max_tokens, "messages": [{"role": "user", "content": "hi"}]}
    body = json.dumps(params).encode()
    return ProxyRequest(endpoint=endpoint, path="/v1/" + endpoint, query="", raw_headers=[],  # type: ignore[arg-type]
                        headers=Headers(), body=body, params=params, principal=principal, client_ip="127.0.0.1")


def estimate(max_tokens: int = 10, model: str = MODEL) -> Any:
    preq = request(principal(), max_tokens=max_tokens, model=model)
    return estimate_request(preq.body, preq.params, PriceTable())


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


async def counter(db: Any, prefix: str) -> dict[str, Any]:
    docs = [d async for d in db["quota_counters"].find({"_id": {"$regex": "^" + prefix}})]
    assert len(docs) == 1, docs
    return docs[0]


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
    with pytest.raises(RateLimited, match="user usr_1: requests_per_minute"):
        await a.serve(p)


async def test_a_reservation_holds_the_estimate_until_the_request_settles(db: Any, clock: Clock) -> None:
    replica = Replica(db, clock)
    est = estimate().tokens
    p = principal(key_limits={"tokens_per_day": 2 * est + est // 2})
    first, second = await replica.admit(p), await replica.admit(p)  # both in flight: 2 estimates reserved
    with pytest.raises(RateLimited) as caught:
        await replica.admit(p)
    assert (f"tokens_per_day limit reached ({2 * est} of {2 * est + est // 2} tokens used or reserved today (UTC); "
            f"this request may use up to {est})") in caught.value.message
    assert caught.value.headers["retry-after"] == str(75)  # to midnight UTC
    replica.finish(first, tokens=5)  # the actual (5) replaces the estimate
    third = await replica.admit(p)
    replica.finish(second, tokens=5)
    replica.finish(third, tokens=5)
    replica.finish(third, tokens=500)  # a second settle of one reservation changes nothing
    assert replica.book.used("tokens:key:ak_1:day:20250131T0000", None) == 15
    clock.advance(seconds=75)
    await replica.serve(p)


async def test_a_request_that_fails_before_upstream_releases_its_reservation(db: Any, clock: Clock) -> None:
    replica = Replica(db, clock)
    est = estimate().tokens
    p = principal(key_limits={"tokens_per_minute": est, "requests_per_minute": 5})
    failed = await replica.admit(p)
    with pytest.raises(RateLimited, match="tokens_per_minute"):
        await replica.admit(p)
    failed.reservation.release()
    failed.reservation.release()  # once only
    await replica.serve(p, tokens=est)
    status = await replica.admission.status(p)
    assert status["access_key"]["requests_per_minute"]["used"] == 2  # a released request still counts


async def test_a_request_larger_than_the_limit_is_refused_and_says_why(db: Any, clock: Clock) -> None:
    replica = Replica(db, clock)
    p = principal(user_limits={"tokens_per_minute": 1000, "requests_per_minute": 10})
    with pytest.raises(RateLimited) as caught:
        await replica.admit(p, max_tokens=32_000)
    assert "user usr_1: tokens_per_minute limit reached (this request may use up to" in caught.value.message
    assert "(input estimate + max_tokens), more than the whole limit" in caught.value.message
    await replica.serve(p)  # the refused request gave back its request count too
    assert (await replica.admission.status(p))["user"]["requests_per_minute"]["used"] == 1


async def test_cost_per_month_reserves_the_priced_estimate_and_resets(db: Any, clock: Clock) -> None:
    replica = Replica(db, clock)
    cost = estimate().cost_usd_micros
    p = principal(key_limits={"cost_usd_per_month": 3 * cost / 1e6})
    await replica.serve(p, tokens=1, cost_usd_micros=cost)
    await replica.serve(p, tokens=1, cost_usd_micros=cost)
    held = await replica.admit(p)
    with pytest.raises(RateLimited) as caught:
        await replica.admit(p)
    assert "cost_usd_per_month limit reached ($" in caught.value.message
    assert "used or reserved this month (UTC)" in caught.value.message
    replica.finish(held, tokens=1, cost_usd_micros=cost)
    clock.advance(minutes=2)  # January -> February
    await replica.serve(p)


async def test_an_unknown_model_is_reserved_and_charged_at_the_default_price(db: Any, clock: Clock) -> None:
    unknown = estimate(model="claude-unreleased-9")
    # Reserved at the tier it will be billed at (app/usage/pricing.py unknown_price, $5 / $25).
    assert unknown.cost_usd_micros == reservation_cost(PriceTable().unknown_price, unknown.input_tokens, 10)
    assert unknown.cost_usd_micros > 0
    replica = Replica(db, clock)
    p = principal(key_limits={"cost_usd_per_day": 1.0})
    preq = await replica.admit(p, model="claude-unreleased-9")
    replica.finish(preq, tokens=1000, cost_usd_micros=None)  # no price recorded (events from before the default tier)
    assert replica.book.used("cost:key:ak_1:day:20250131T0000", None) == 15_000  # 1000 x $15 / MTok


async def test_a_users_limit_covers_all_of_its_keys(db: Any, clock: Clock) -> None:
    replica = Replica(db, clock)
    est = estimate().tokens
    limits = {"tokens_per_month": est}
    await replica.serve(principal("ak_1", user_limits=limits), tokens=est)
    with pytest.raises(RateLimited, match="user usr_1"):
        await replica.serve(principal("ak_2", user_limits=limits))
    await replica.serve(principal("ak_3", user="usr_2", user_limits=limits))


async def test_a_day_counter_starts_from_the_usage_already_recorded(db: Any, clock: Clock) -> None:
    replica = Replica(db, clock)
    est = estimate().tokens
    await replica.serve(principal(), tokens=3 * est)  # before any limit was set
    await replica.recorder.flush()
    p = principal(key_limits={"tokens_per_day": 4 * est})
    await replica.serve(p, tokens=est)
    with pytest.raises(RateLimited, match=f"{4 * est} of {4 * est} tokens used or reserved"):
        await replica.serve(p)


async def test_count_tokens_is_not_limited(db: Any, clock: Clock) -> None:
    replica = Replica(db, clock)
    p = principal(key_limits={"requests_per_minute": 1})
    for _ in range(3):
        await replica.serve(p, endpoint="count_tokens")
    await replica.serve(p)


async def test_a_store_failure_fails_open_then_counts_locally(clock: Clock) -> None:
    db = AsyncMongoMockClient(tz_aware=True)["quotas"]
    faults = Faults(collections=("quota_counters",))
    faults.down = True
    replica = Replica(faults.wrap(db), clock)
    p = principal(key_limits={"requests_per_minute": 2})
    await replica.serve(p)
    await replica.serve(p)
    with pytest.raises(RateLimited):
        await replica.serve(p)
    # The store comes back: what was counted locally reaches the shared counter.
    faults.heal()
    replica.book._degraded_until = 0.0
    clock.advance(seconds=11)  # past the local lease (degraded_s = 10)
    await replica.book.sync()
    assert (await counter(db, "requests:key:ak_1:minute:"))["granted"] == 2


async def test_leases_never_grant_more_than_the_limit_across_replicas(db: Any, clock: Clock) -> None:
    est = estimate().tokens
    p = principal(key_limits={"tokens_per_day": 10 * est})
    a, b = Replica(db, clock, slice_fraction=0.5), Replica(db, clock, slice_fraction=0.5)
    admitted = 0
    for replica in [a, b] * 10:
        try:
            await replica.serve(p, tokens=est)
            admitted += 1
        except RateLimited:
            pass
    assert admitted == 10
    doc = await counter(db, "tokens:key:ak_1:day:")
    assert doc["granted"] <= 10 * est and set(doc["leases"]) == {a.book.holder, b.book.holder}


async def test_an_expired_lease_is_given_back_and_late_settles_reach_the_counter(db: Any, clock: Clock) -> None:
    est = estimate().tokens
    p = principal(key_limits={"tokens_per_day": 10 * est})
    a, b = Replica(db, clock, slice_fraction=0.5, lease_ttl_s=5), Replica(db, clock, slice_fraction=0.5)
    in_flight = await a.admit(p)  # a holds a 5-estimate slice, 1 estimate reserved
    assert (await counter(db, "tokens:key:"))["granted"] == 5 * est
    clock.advance(seconds=6)
    await a.book.sync()  # expired: the 4 unused estimates go back, the reserved one stays
    assert (await counter(db, "tokens:key:"))["granted"] == est
    a.finish(in_flight, tokens=3)  # settles after its lease closed: a late correction
    await a.book.sync()
    assert (await counter(db, "tokens:key:"))["granted"] == 3
    for _ in range(9):
        await b.serve(p, tokens=est)
    with pytest.raises(RateLimited):
        await b.serve(p)


async def test_a_dead_replicas_lease_is_reclaimed_after_it_expires(db: Any, clock: Clock) -> None:
    est = estimate().tokens
    p = principal(key_limits={"tokens_per_day": 10 * est})
    dead = Replica(db, clock, holder="dead", slice_fraction=0.5, lease_ttl_s=5)
    live = Replica(db, clock, holder="live", slice_fraction=0.5, lease_ttl_s=5)
    await dead.admit(p)
    await dead.book.sync()  # reports 1 estimate spent; then the process dies, lease and all
    for _ in range(5):
        await live.serve(p, tokens=est)
    with pytest.raises(RateLimited):
        await live.serve(p)  # the dead replica's 4 unspent estimates are still leased
    clock.advance(seconds=11)  # lease expiry (5 s) + the reclaim grace (one lease time)
    for _ in range(4):
        await live.serve(p, tokens=est)
    with pytest.raises(RateLimited):
        await live.serve(p)
    doc = await counter(db, "tokens:key:")
    assert "dead" not in doc["leases"] and doc["granted"] <= 10 * est


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


async def test_a_request_whose_window_ends_while_it_waits_is_claimed_in_the_next_window(db: Any) -> None:
    """Under load a request can compute its minute window, then reach its counter after that minute
    ended: it must be counted in the next window, not refused."""
    start = datetime(2025, 1, 31, 23, 58, 59, 900_000, tzinfo=UTC)
    calls = 0

    def late_clock() -> datetime:  # the first reading is the old minute; every later one is past it
        nonlocal calls
        calls += 1
        return start if calls == 1 else start + timedelta(seconds=1)

    replica = Replica(db, late_clock)  # type: ignore[arg-type]
    who = principal(key_limits={"requests_per_minute": 5})
    preq = await replica.admit(who)
    assert preq.reservation is not None
    doc = await counter(db, "requests:key:ak_1:minute:20250131T2359")
    assert doc["granted"] >= 1
