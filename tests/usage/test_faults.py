"""Fault injection on the usage write path (issue 10): poison events, store outages, lost
acknowledgements, shutdown. The real UsageRecorder and UsageWriter run on mongomock-motor;
faults are injected at the repository layer (a wrapper around the real repository, and
tests/usage/faults.py around its collections), and the repository checks every document with
pymongo's own BSON encoder, so what fails here fails the same way against a real server."""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Sequence
from typing import Any

import bson
import pytest
from mongomock_motor import AsyncMongoMockClient
from pymongo.errors import AutoReconnect

from app.store.usage import DEAD_LETTER, EVENTS, FOLDS
from app.store.usage_write import UsageWriter
from app.records.events import UsageEvent
from app.usage.metrics import ProxyMetrics
from app.usage.recorder import UsageRecorder
from tests.store.test_usage_write import bucket_sums, expected_sums
from tests.usage.faults import Faults, RefusingDatabase


def new_db() -> Any:
    return AsyncMongoMockClient(tz_aware=True)["faults"]


def ev(i: int = 0, **overrides: object) -> UsageEvent:
    values: dict[str, object] = dict(user_id=f"usr_{i % 3}", access_key_id=f"ak_{i % 5}", provider="anthropic",
                                     model=("claude-haiku-4-5", "claude-sonnet-4-5")[i % 2],
                                     input_tokens=100 + i % 97, output_tokens=1 + i % 13,
                                     cache_read_input_tokens=(i % 7) * 1000, status=529 if i % 11 == 0 else 200)
    values.update(overrides)
    return UsageEvent(**values)  # type: ignore[arg-type]


async def global_month(db: Any) -> dict[str, int]:
    """Counters summed over every global month bucket (all models)."""
    total: dict[str, int] = {}
    async for doc in db["usage_buckets"].find({"granularity": "month", "scope": "global"}):
        for name in ("requests", "input_tokens", "output_tokens", "cache_read_input_tokens"):
            total[name] = total.get(name, 0) + doc[name]
    return total


# --- poison from the wire: sanitised at record(), counted, never jamming -------------------

POISON = {
    "lone_surrogate_model": ({"model": "claude-\ud800"}, {}),
    "huge_int_tokens": ({"input_tokens": int(1e308)}, {"input_tokens": 10**9}),  # int() of an upstream 1e308
    "float_1e308_tokens": ({"output_tokens": 1e308}, {"output_tokens": 10**9}),
    "nan_tokens": ({"output_tokens": math.nan}, {"output_tokens": 0}),
    "negative_tokens": ({"input_tokens": -5_000}, {"input_tokens": 0}),
}


@pytest.mark.parametrize(("poison", "stored"), POISON.values(), ids=POISON.keys())
async def test_a_poison_event_is_cleaned_counted_and_does_not_stop_later_events(
        poison: dict[str, object], stored: dict[str, int]) -> None:
    db = new_db()
    recorder = UsageRecorder(UsageWriter(db).write_batch, batch_size=10, max_backoff_s=0.01)
    bad = ev(0, **{"input_tokens": 7, "output_tokens": 3, "cache_read_input_tokens": 0, **poison})
    recorder.record(bad)
    later = [ev(i) for i in range(1, 6)]
    for e in later:
        recorder.record(e)
    await asyncio.wait_for(recorder.flush(), timeout=5)
    assert recorder.written == 6 and recorder.sanitized == 1 and recorder.dead_lettered == 0
    total = await global_month(db)
    expected = {"input_tokens": 7, "output_tokens": 3} | stored
    assert total["requests"] == 6
    for name in ("input_tokens", "output_tokens"):
        assert total[name] == expected[name] + sum(getattr(e, name) for e in later), name
    doc = await db[EVENTS].find_one({"_id": bad.event_id})
    bson.encode(doc)  # what is stored is what a real server would take
    if "model" in poison:
        assert doc["model"] == "claude-\ufffd"


# --- poison that gets past sanitising: isolated and dead-lettered alone -----------------------

def _unstorable(kind: str, event: UsageEvent) -> None:
    """Make ``event`` unstorable *after* record() sanitised it (a bug elsewhere, a new field...)."""
    if kind == "lone_surrogate":
        event.model = "claude-\udfff"
    elif kind == "int_past_64_bits":
        event.output_tokens = 2**70
    elif kind == "unknown_type":
        event.notes = [object()]  # type: ignore[list-item]


@pytest.mark.parametrize("kind", ["lone_surrogate", "int_past_64_bits", "unknown_type", "refused_by_server"])
async def test_a_poison_event_in_a_batch_of_500_is_dead_lettered_alone(kind: str) -> None:
    db = new_db()
    handle = RefusingDatabase(db, lambda doc: doc.get("request_id") == "req_poison")
    repo = UsageWriter(handle)
    metrics = ProxyMetrics()
    recorder = UsageRecorder(repo.write_batch, batch_size=500, max_backoff_s=0.01, dead_letter=repo.dead_letter)
    metrics.watch(recorder)
    events = [ev(i) for i in range(500)]
    poison = events[250]
    for e in events:
        recorder.record(e)
    if kind == "refused_by_server":
        poison.request_id = "req_poison"
    else:
        _unstorable(kind, poison)
    await asyncio.wait_for(recorder.flush(), timeout=10)

    good = [e for e in events if e is not poison]
    assert recorder.written == 499 and recorder.dead_lettered == 1 and recorder.depth == 0
    assert await bucket_sums(db) == expected_sums(good)  # each of the 499 once, in every bucket
    assert await db[EVENTS].count_documents({}) == 499
    assert await db[FOLDS].count_documents({"done": False}) == 0
    letters = await db[DEAD_LETTER].find({}).to_list(None)
    assert len(letters) == 1
    letter = letters[0]
    assert letter["kind"] == "event" and letter["event_id"] == poison.event_id
    assert letter["reason"] and letter["document"]["input_tokens"] == poison.input_tokens
    assert poison.event_id in letter["event"] and letter["expires_at"] > letter["dead_lettered_at"]
    bson.encode(letter)
    body = metrics.render()[0].decode()
    assert "claude_proxy_usage_events_dead_lettered_total 1.0" in body


class AllOrNothingWriter:
    """A writer that says nothing about *which* event is bad: it refuses any batch holding a poison
    event with a ValueError, writes nothing of it, and stores every other batch."""

    def __init__(self) -> None:
        self.calls: list[int] = []
        self.stored: list[str] = []

    async def __call__(self, batch: Sequence[UsageEvent]) -> None:
        self.calls.append(len(batch))
        if any(e.request_id == "poison" for e in batch):
            raise ValueError("batch refused")
        self.stored.extend(e.event_id for e in batch)


async def test_a_writer_that_cannot_say_which_event_is_bad_gets_its_batch_bisected() -> None:
    writer = AllOrNothingWriter()
    letters: list[tuple[UsageEvent, str]] = []

    async def dead_letter(event: UsageEvent, reason: str) -> None:
        letters.append((event, reason))

    recorder = UsageRecorder(writer, batch_size=500, dead_letter=dead_letter)
    events = [ev(i, request_id="poison" if i in (3, 420) else None) for i in range(500)]
    for e in events:
        recorder.record(e)
    await asyncio.wait_for(recorder.flush(), timeout=10)
    assert sorted(writer.stored) == sorted(e.event_id for e in events if e.request_id != "poison")
    assert len(writer.stored) == len(set(writer.stored)) == 498
    assert [e.request_id for e, _ in letters] == ["poison", "poison"]
    assert letters[0][1] == "ValueError: batch refused"
    assert len(writer.calls) <= 4 * math.ceil(math.log2(500)) + 1  # a bisection, not one call per event
    assert recorder.written == 498 and recorder.dead_lettered == 2 and recorder.depth == 0


async def test_shutdown_flushes_the_queue_and_a_dead_letter_does_not_hold_it() -> None:
    db = new_db()
    repo = UsageWriter(db)
    recorder = UsageRecorder(repo.write_batch, batch_size=20, flush_interval_s=60, dead_letter=repo.dead_letter)
    recorder.start()
    events = [ev(i) for i in range(75)]
    for e in events:
        recorder.record(e)
    events[30].model = "claude-\ud800"  # past sanitising
    events[61].input_tokens = 2**64
    await asyncio.wait_for(recorder.aclose(timeout_s=10), timeout=15)
    assert recorder.depth == 0 and recorder.written == 73 and recorder.dead_lettered == 2
    assert await db[DEAD_LETTER].count_documents({}) == 2
    assert (await global_month(db))["requests"] == 73


async def test_a_dead_letter_write_during_an_outage_is_retried() -> None:
    db, faults = new_db(), Faults(collections=(DEAD_LETTER,))
    repo = UsageWriter(faults.wrap(db))
    recorder = UsageRecorder(repo.write_batch, max_backoff_s=0.01, dead_letter=repo.dead_letter)
    e = ev(1)
    recorder.record(e)
    e.output_tokens = 2**80
    faults.fail_after = 0
    flushing = asyncio.create_task(recorder.flush())
    while faults.injected < 3:
        await asyncio.sleep(0.005)
    faults.heal()
    faults.lose_ack_at = faults.writes  # the first dead-letter write lands but its answer is lost
    await asyncio.wait_for(flushing, timeout=5)
    assert recorder.dead_lettered == 1 and faults.lost_acks == 1
    assert await db[DEAD_LETTER].count_documents({}) == 1


# --- a 10 s store outage with traffic flowing ------------------------------------------------

class FlakyRepository:
    """Wraps the real repository's ``write_batch``: with probability ``lose_rate`` a batch that
    *was* written reports a lost acknowledgement (the recorder retries a batch already stored).
    The outage itself is injected under the repository, at every collection call (Faults), so it
    can begin in the middle of a batch."""

    def __init__(self, repo: UsageWriter, lose_rate: float, seed: int = 7) -> None:
        self.repo, self.lose_rate = repo, lose_rate
        self._random = random.Random(seed)
        self.lost_acks = 0
        self.calls = 0

    async def write_batch(self, events: Sequence[UsageEvent]) -> None:
        self.calls += 1
        await self.repo.write_batch(events)
        if self._random.random() < self.lose_rate:
            self.lost_acks += 1
            raise AutoReconnect("injected: batch written, acknowledgement lost")


@pytest.mark.timeout(60)
async def test_a_ten_second_outage_with_traffic_loses_and_doubles_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    db = new_db()
    faults = Faults(reads=True, varied=True)
    faults.lose_ack_rate = 0.01  # also outside the outage: single writes whose answer is lost
    flaky = FlakyRepository(UsageWriter(faults.wrap(db)), lose_rate=0.1)
    recorder = UsageRecorder(flaky.write_batch, batch_size=100, flush_interval_s=0.05, max_backoff_s=0.5)
    recorder.start()
    events: list[UsageEvent] = []
    timeline: list[str] = []
    started = time.monotonic()

    def note(what: str) -> None:
        timeline.append(f"t={time.monotonic() - started:5.1f}s {what}: recorded={len(events)} "
                        f"written={recorder.written} depth={recorder.depth} failures={recorder.write_failures}")

    async def traffic(seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for _ in range(5):
                n = len(events)
                e = ev(n, access_key_id=f"ak_{n % 4}", user_id=f"usr_{n % 4 % 2}", model="claude-sonnet-4-5")
                events.append(e)
                recorder.record(e)
            await asyncio.sleep(0.05)  # ~100 events/s

    await traffic(1.0)
    note("before the outage")
    faults.down = True
    outage = time.monotonic()
    while time.monotonic() - outage < 10.0:
        await traffic(2.0)
        note("store down")
    written_during = recorder.written
    faults.heal()
    note("store back")
    await traffic(1.0)
    await asyncio.wait_for(recorder.aclose(timeout_s=30), timeout=40)
    note("after shutdown flush")

    lost = len(events) - recorder.written
    stored = await db[EVENTS].count_documents({})
    doubled = sum(t["requests"] for t in (await bucket_sums(db)).values()) // 15 - len(events)
    with capsys.disabled():
        print("\n" + "\n".join(timeline))
        print(f"outage test: {len(events)} events, {stored} stored, lost {lost}, doubled {doubled}; "
              f"{faults.injected} store errors injected ({faults.lost_acks} lost acks at single writes, "
              f"{flaky.lost_acks} lost batch acks), {recorder.write_failures} failed attempts, "
              f"{flaky.calls} write_batch calls")
    assert faults.injected > 10 and faults.lost_acks > 0 and flaky.lost_acks > 0
    assert written_during < len(events)  # the outage really held events back
    assert recorder.depth == 0 and recorder.dropped == 0 and recorder.dead_lettered == 0
    assert recorder.written == len(events) == stored
    assert await bucket_sums(db) == expected_sums(events)  # every bucket, every granularity: exact
    assert await db[FOLDS].count_documents({"done": False}) == 0
