"""CPU per relayed SSE event: long answers (the mock's ``mode=long``, ``deltas`` content_block_delta
events one socket write each) read to their end, direct and through the proxy in alternating rounds,
with every process's CPU time from /proc divided by the events the client received.

A 1,000-delta answer is what a long Claude Code reply looks like; the 6-event stream of the
throughput phase hides the per-event cost (issue 16: 79-109 µs per event, target <= 25 µs).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp

from _common import cpu_s, percentile
from _phases import Target

EVENT = b"event: "


async def read_long(target: Target, session: aiohttp.ClientSession, body: bytes, query: str) -> tuple[int, int, float]:
    """One long answer read to its end -> ``(events seen, socket reads, seconds to the last byte)``."""
    t0 = time.perf_counter()
    events = reads = 0
    tail = b""
    async with session.post(target.url + "/v1/messages?" + query, data=body, headers=target.headers) as r:
        if r.status != 200:
            raise RuntimeError(f"{target.name}: {r.status}")
        async for data in r.content.iter_any():
            reads += 1
            events += (tail + data).count(EVENT) - tail.count(EVENT)
            tail = data[-len(EVENT):]
    return events, reads, time.perf_counter() - t0


async def stream_cost(targets: list[Target], body: bytes, deltas: int, gap_ms: float, concurrency: int,
                      streams: int, rounds: int, max_s: float, pids: dict[str, int]) -> dict[str, dict[str, Any]]:
    """``streams`` long answers per target (``concurrency`` at a time), split into ``rounds``
    alternating blocks, all within ``max_s`` seconds. Per target: events and reads the client saw,
    p50 seconds per answer, and each process's CPU µs per event (``<name>_us_per_event``)."""
    query = f"mode=long&deltas={deltas}&gap_ms={gap_ms:g}"
    acc: dict[str, dict[str, Any]] = {t.name: {"streams": 0, "events": 0, "reads": 0, "durations": [],
                                               **{f"{n}_cpu_s": 0.0 for n in pids}} for t in targets}
    deadline = time.monotonic() + max_s
    for _ in range(rounds):
        for t in targets:
            a = acc[t.name]
            async with t.session(concurrency) as session:
                await read_long(t, session, body, query)  # warm the connection (not counted)
                left = streams // rounds

                async def worker(t: Any = t, a: dict[str, Any] = a) -> None:  # bound now, awaited below
                    nonlocal left
                    while left > 0 and time.monotonic() < deadline:
                        left -= 1
                        events, reads, seconds = await read_long(t, session, body, query)
                        a["streams"] += 1
                        a["events"] += events
                        a["reads"] += reads
                        a["durations"].append(seconds)

                cpu0 = {n: cpu_s(pid) for n, pid in pids.items()}
                await asyncio.gather(*(worker() for _ in range(concurrency)))
                for n, pid in pids.items():
                    a[f"{n}_cpu_s"] += cpu_s(pid) - cpu0[n]
    for a in acc.values():
        durations = a.pop("durations")
        a["p50_s"] = percentile(durations, 50)
        a["events_per_read"] = a["events"] / max(1, a["reads"])
        for n in pids:
            a[f"{n}_us_per_event"] = a[f"{n}_cpu_s"] / max(1, a["events"]) * 1e6
    return acc
