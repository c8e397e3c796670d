"""UsageRecorder: fixed batches retried until they land, pricing and observers at record time, the
quota ledger, overflow, graceful shutdown, and the periodic sweep."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from mongomock_motor import AsyncMongoMockClient
from pymongo.errors import AutoReconnect

from app.store.usage_write import UsageWriter
from app.records.buckets import floor
from app.records.events import UsageEvent
from app.usage.pricing import PriceTable
from app.usage.ledger import PendingUsage
from app.usage.recorder import UsageRecorder
from tests.usage.faults import Faults


def ev(i: int = 0, **overrides: object) -> UsageEvent:
    values: dict[str, object] = dict(user_id="usr_1", access_key_id="ak_1", provider="anthropic",
                                     model="claude-haiku-4-5", input_tokens=100 + i, output_tokens=10)
    values.update(overrides)
    return UsageEvent(**values)  # type: ignore[arg-type]


class FlakyWriter:
    """Fails the first ``failures`` calls; remembers every batch it was given."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.calls: list[list[str]] = []
        self.stored: list[str] = []

    async def __call__(self, batch: Sequence[UsageEvent]) -> None:
        self.calls.append([e.event_id for e in batch])
        if self.failures > 0:
            self.failures -= 1
            raise AutoReconnect("injected")
        self.stored.extend(e.event_id for e in batch)


async def test_a_failed_batch_is_retried_unchanged_while_new_events_wait() -> None:
    writer = FlakyWriter(failures=2)
    recorder = UsageRecorder(writer, batch_size=3, max_backoff_s=0.01)
    first = [ev(i) for i in range(4)]
    for e in first:
        recorder.record(e)
    flushing = asyncio.create_task(recorder.flush())
    await asyncio.sleep(0)  # the first batch is taken; these arrive during its retries
    later = [ev(10 + i) for i in range(2)]
    for e in later:
        recorder.record(e)
    await flushing
    ids = [e.event_id for e in first + later]
    assert writer.calls[0] == writer.calls[1] == writer.calls[2] == ids[:3]
    assert writer.stored == ids
    assert recorder.write_failures == 2 and recorder.written == 6 and recorder.depth == 0


async def test_record_prices_observes_and_feeds_the_ledger() -> None:
    seen: list[UsageEvent] = []
    pending = PendingUsage()
    recorder = UsageRecorder(FlakyWriter(), price=PriceTable().cost_usd_micros, observers=[seen.append],
                             ledger=pending)
    e = ev(0, input_tokens=1000, output_tokens=100)
    recorder.record(e)
    assert e.cost_usd_micros == 1000 * 1 + 100 * 5  # Haiku 4.5: $1 in, $5 out per MTok
    assert seen == [e]
    window = ("key", "ak_1", "day")
    assert pending.get(*window, floor(e.time, "day")) == (1100, 1500)
    await recorder.flush()
    assert pending.get(*window, floor(e.time, "day")) == (0, 0)


async def test_a_broken_observer_or_price_never_loses_the_event() -> None:
    def broken(_: UsageEvent) -> None:
        raise RuntimeError("boom")

    def broken_price(_: UsageEvent) -> int:
        raise RuntimeError("boom")

    writer = FlakyWriter()
    recorder = UsageRecorder(writer, price=broken_price, observers=[broken])
    recorder.record(ev())
    await recorder.flush()
    assert len(writer.stored) == 1


async def test_overflow_drops_and_counts_but_still_observes() -> None:
    seen: list[UsageEvent] = []
    pending = PendingUsage()
    recorder = UsageRecorder(FlakyWriter(), queue_max=2, observers=[seen.append], ledger=pending)
    for i in range(3):
        recorder.record(ev(i))
    assert recorder.dropped == 1 and recorder.depth == 2 and len(seen) == 3


async def test_graceful_shutdown_flushes_the_queue() -> None:
    writer = FlakyWriter(failures=1)
    recorder = UsageRecorder(writer, batch_size=10, flush_interval_s=60, max_backoff_s=0.01)
    recorder.start()
    for i in range(25):
        recorder.record(ev(i))
    await recorder.aclose(timeout_s=10)
    assert len(writer.stored) == 25 and recorder.depth == 0


async def test_an_outage_delays_writes_and_loses_nothing() -> None:
    db = AsyncMongoMockClient(tz_aware=True)["recorder"]
    faults = Faults()
    faults.down = True
    recorder = UsageRecorder(UsageWriter(faults.wrap(db)).write_batch, batch_size=7,
                             flush_interval_s=0.01, max_backoff_s=0.02)
    recorder.start()
    events = [ev(i) for i in range(30)]
    for e in events:
        recorder.record(e)
    while recorder.write_failures < 5:
        await asyncio.sleep(0.01)
    faults.heal()
    faults.lose_ack_at = faults.writes + 3  # and one acknowledgement lost on the way back
    await recorder.aclose(timeout_s=10)
    assert recorder.written == 30
    total = await db["usage_buckets"].find_one({"granularity": "month", "scope": "global"})
    assert total["requests"] == 30
    assert total["input_tokens"] == sum(e.input_tokens for e in events)


async def test_the_sweep_runs_in_the_background() -> None:
    swept = asyncio.Event()

    async def sweep() -> int:
        swept.set()
        return 0

    recorder = UsageRecorder(FlakyWriter(), flush_interval_s=0.01, sweep=sweep, sweep_interval_s=0.01)
    recorder.start()
    await asyncio.wait_for(swept.wait(), timeout=10)
    await recorder.aclose()
