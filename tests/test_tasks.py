"""app/tasks.py: Periodic runs its function on the interval and on wake(), survives errors (logging
no message or stack trace), and stops by cancelling or, gracefully, after the round in progress."""

from __future__ import annotations

import asyncio
import logging

import pytest

from app.tasks import Periodic

LONG_S = 3600.0  # an interval no test waits for: rounds come from wake()


class Rounds:
    """A round function that counts its calls and lets a test wait for the n-th."""

    def __init__(self) -> None:
        self.count = 0
        self._changed = asyncio.Condition()

    async def __call__(self) -> None:
        async with self._changed:
            self.count += 1
            self._changed.notify_all()

    async def reach(self, n: int) -> None:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: self.count >= n), timeout=5)


async def test_runs_every_interval_and_not_before_the_first() -> None:
    rounds = Rounds()
    periodic = Periodic("test-loop", 0.01, rounds)
    periodic.start()
    assert rounds.count == 0  # the first round waits one interval
    await rounds.reach(3)
    await periodic.stop()
    assert not periodic.running


async def test_wake_runs_a_round_now_and_start_twice_is_one_task() -> None:
    rounds = Rounds()
    periodic = Periodic("test-loop", LONG_S, rounds)
    periodic.start()
    periodic.start()
    periodic.wake()
    await rounds.reach(1)
    periodic.wake()
    await rounds.reach(2)
    await periodic.stop()
    assert rounds.count == 2


async def test_an_error_is_logged_without_its_message_and_the_loop_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    rounds = Rounds()

    async def flaky() -> None:
        await rounds()
        if rounds.count == 1:
            raise RuntimeError("mongodb://user:hunter2@db")

    periodic = Periodic("test-loop", LONG_S, flaky)
    periodic.start()
    with caplog.at_level(logging.WARNING, logger="app.tasks"):
        periodic.wake()
        await rounds.reach(1)
        await asyncio.sleep(0)  # let the failed round's log line be written
        periodic.wake()
        await rounds.reach(2)
    await periodic.stop()
    (record,) = [r for r in caplog.records if r.name == "app.tasks"]
    assert "test-loop failed (RuntimeError)" in record.getMessage()
    assert "hunter2" not in caplog.text and record.exc_info is None


async def test_stop_cancels_a_round_in_progress_and_start_starts_again() -> None:
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def stuck() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    periodic = Periodic("test-loop", LONG_S, stuck)
    periodic.start()
    periodic.wake()
    await asyncio.wait_for(started.wait(), timeout=5)
    await periodic.stop()
    assert cancelled.is_set() and not periodic.running
    await periodic.stop()  # stopping twice is fine
    started.clear()
    periodic.start()
    periodic.wake()
    await asyncio.wait_for(started.wait(), timeout=5)
    await periodic.stop()


async def test_a_graceful_stop_lets_the_round_finish_and_starts_no_new_one() -> None:
    started, release = asyncio.Event(), asyncio.Event()
    finished: list[int] = []

    async def slow() -> None:
        started.set()
        await release.wait()
        finished.append(1)

    periodic = Periodic("test-loop", 0.01, slow)
    periodic.start()
    await asyncio.wait_for(started.wait(), timeout=5)
    stopping = asyncio.create_task(periodic.stop(graceful=True))
    await asyncio.sleep(0.02)  # longer than the interval: a new round would start if it could
    assert not stopping.done()
    release.set()
    await asyncio.wait_for(stopping, timeout=5)
    assert finished == [1]


async def test_a_graceful_stop_of_an_idle_loop_runs_no_round() -> None:
    rounds = Rounds()
    periodic = Periodic("test-loop", LONG_S, rounds)
    periodic.start()
    await asyncio.sleep(0)
    await asyncio.wait_for(periodic.stop(graceful=True), timeout=5)
    assert rounds.count == 0 and not periodic.running
