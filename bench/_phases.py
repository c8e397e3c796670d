"""The measurements of bench/proxy_overhead.py, each a bounded loop (a count and a deadline)
against a ``Target``: latency at one connection, closed-loop throughput with the processes' CPU
time, inter-chunk gaps of a gapped stream, and the proxy's RSS with many slow streams open."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from _common import cpu_s, percentile, raise_nofile, rss_kib

MARKER = b"event: content_block_delta"


class Target:
    """One side of the comparison: a base URL and the headers a client sends it."""

    def __init__(self, name: str, url: str, headers: dict[str, str]) -> None:
        self.name, self.url, self.headers = name, url, headers

    def session(self, connections: int) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections, force_close=False),
                                     auto_decompress=False, timeout=aiohttp.ClientTimeout(total=120))

    def call(self, kind: str) -> Callable[[aiohttp.ClientSession, bytes], Awaitable[float]]:
        return self.json if kind == "json" else self.stream

    async def json(self, session: aiohttp.ClientSession, body: bytes) -> float:
        """Seconds to the last byte of a JSON answer."""
        t0 = time.perf_counter()
        async with session.post(self.url + "/v1/messages?mode=json", data=body, headers=self.headers) as r:
            await r.read()
            if r.status != 200:
                raise RuntimeError(f"{self.name}: {r.status}")
        return time.perf_counter() - t0

    async def stream(self, session: aiohttp.ClientSession, body: bytes, query: str = "mode=stream",
                     arrivals: list[tuple[float, int]] | None = None) -> float:
        """Seconds to the first content_block_delta (the stream is read to its end). ``arrivals``
        gets ``(seconds since send, deltas in this read)`` for each read that carried deltas."""
        t0 = time.perf_counter()
        first = None
        tail = b""
        async with session.post(self.url + "/v1/messages?" + query, data=body, headers=self.headers) as r:
            if r.status != 200:
                raise RuntimeError(f"{self.name}: {r.status}")
            async for data in r.content.iter_any():
                now = time.perf_counter() - t0
                seen = (tail + data).count(MARKER) - tail.count(MARKER)
                tail = data[-len(MARKER):]
                if seen and first is None:
                    first = now
                if seen and arrivals is not None:
                    arrivals.append((now, seen))
        if first is None:
            raise RuntimeError(f"{self.name}: stream without content_block_delta")
        return first


def summary_ms(values_s: list[float]) -> dict[str, float]:
    ms = [v * 1000 for v in values_s]
    return {"n": len(ms), "p50_ms": percentile(ms, 50), "p99_ms": percentile(ms, 99)}


async def latency(targets: list[Target], kind: str, body: bytes, n: int, warmup: int, rounds: int,
                  max_s: float, proxy_pid: int) -> dict[str, dict[str, float]]:
    """p50/p99 at one connection, ``n`` requests per target in ``rounds`` alternating blocks; and
    the proxy's CPU per request (ms), which other load on the machine disturbs less than latency."""
    samples: dict[str, list[float]] = {t.name: [] for t in targets}
    sessions = {t.name: t.session(1) for t in targets}
    deadline = time.monotonic() + max_s
    try:
        for t in targets:
            for _ in range(warmup):
                if time.monotonic() > deadline:
                    break
                await t.call(kind)(sessions[t.name], body)
        cpu0 = cpu_s(proxy_pid)
        for _ in range(rounds):
            for t in targets:
                call = t.call(kind)
                for _ in range(n // rounds):
                    if time.monotonic() > deadline:
                        break
                    samples[t.name].append(await call(sessions[t.name], body))
        proxy_cpu_ms = (cpu_s(proxy_pid) - cpu0) * 1000
    finally:
        for s in sessions.values():
            await s.close()
    out = {name: summary_ms(values) for name, values in samples.items()}
    out["proxy"]["proxy_cpu_ms_per_req"] = proxy_cpu_ms / max(1, len(samples["proxy"]))
    return out


async def closed_loop(target: Target, kind: str, body: bytes, connections: int, duration_s: float,
                      max_requests: int, pids: dict[str, int]) -> dict[str, float]:
    """``connections`` workers, each sending its next request when the last one ends, until
    ``duration_s`` passes or ``max_requests`` are done. CPU seconds per process from /proc."""
    session = target.session(connections)
    done = 0
    latencies: list[float] = []
    deadline = time.monotonic() + duration_s

    async def worker() -> None:
        nonlocal done
        call = target.call(kind)
        while time.monotonic() < deadline and done < max_requests:
            done += 1
            latencies.append(await call(session, body))

    try:
        await asyncio.gather(*(target.call(kind)(session, body) for _ in range(connections)))  # open them
        cpu0 = {name: cpu_s(pid) for name, pid in pids.items()}
        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - t0
        cpu = {name: cpu_s(pid) - cpu0[name] for name, pid in pids.items()}
    finally:
        await session.close()
    return {"requests": len(latencies), "seconds": elapsed, **{f"{name}_cpu_s": v for name, v in cpu.items()},
            "latencies": latencies}


async def throughput(targets: list[Target], kind: str, body: bytes, connections: int, duration_s: float,
                     rounds: int, max_requests: int, pids: dict[str, int], mock_url: str) -> dict[str, Any]:
    """Alternating closed-loop runs; totals per target, and the upstream connections each side
    opened (a proxy that pools opens about one per client connection, once)."""
    totals: dict[str, dict[str, Any]] = {t.name: {"latencies": []} for t in targets}
    for _ in range(rounds):
        for t in targets:
            before = (await mock_stats(mock_url))["connections"]
            run = await closed_loop(t, kind, body, connections, duration_s / rounds, max_requests // rounds, pids)
            run["upstream_connections"] = (await mock_stats(mock_url))["connections"] - before - 1  # the stats call
            acc = totals[t.name]
            acc["latencies"] += run.pop("latencies")
            for key, value in run.items():
                acc[key] = acc.get(key, 0) + value
    for acc in totals.values():
        acc.update(summary_ms(acc.pop("latencies")))
        acc["req_per_s"] = acc["requests"] / acc["seconds"]
        acc["proxy_cpu_util"] = acc["proxy_cpu_s"] / acc["seconds"]
        acc["req_per_proxy_cpu_s"] = acc["requests"] / acc["proxy_cpu_s"] if acc["proxy_cpu_s"] else float("nan")
    return totals


async def mock_stats(mock_url: str) -> dict[str, int]:
    async with aiohttp.ClientSession() as s, s.get(mock_url + "/_stats") as r:
        return await r.json()


async def chunk_timing(targets: list[Target], body: bytes, streams: int, chunks: int, gap_ms: float,
                       max_s: float) -> dict[str, dict[str, float]]:
    """Gaps between content_block_delta arrivals at the client; upstream sends them ``gap_ms`` apart."""
    out: dict[str, dict[str, float]] = {}
    deadline = time.monotonic() + max_s
    for t in targets:
        gaps: list[float] = []
        most_per_read = 0
        async with t.session(1) as session:
            for _ in range(streams):
                if time.monotonic() > deadline:
                    break
                arrivals: list[tuple[float, int]] = []
                await t.stream(session, body, f"mode=gapped&chunks={chunks}&gap_ms={gap_ms:g}", arrivals)
                most_per_read = max(most_per_read, *(n for _, n in arrivals))
                times = [at for at, _ in arrivals]
                gaps += [(b - a) * 1000 for a, b in zip(times, times[1:], strict=False)]
                gaps += [0.0] * sum(n - 1 for _, n in arrivals)  # deltas that came in one read: no gap
        out[t.name] = {"gaps": len(gaps), "gap_p50_ms": percentile(gaps, 50), "gap_min_ms": min(gaps or [0]),
                       "gap_max_ms": max(gaps or [0]), "most_deltas_per_read": most_per_read}
    return out


async def open_streams(target: Target, body: bytes, count: int, proxy_pid: int, max_s: float,
                       mock_url: str) -> dict[str, float]:
    """Proxy RSS before, with ``count`` slow streams open (each has had its first delta), and after
    they close. Streams are opened 50 at a time; the mock holds each open for up to ``max_s`` s."""
    raise_nofile(count * 4 + 1024)
    await asyncio.sleep(0.5)
    before = rss_kib(proxy_pid)
    release = asyncio.Event()
    opened = 0
    session = target.session(0)
    gate = asyncio.Semaphore(50)

    async def hold() -> None:
        nonlocal opened
        async with gate:
            response = await session.post(target.url + f"/v1/messages?mode=slow&ping_s=2&hold_s={max_s:g}",
                                          data=body, headers=target.headers)
            seen = b""
            while MARKER not in seen:
                data = await response.content.readany()
                if not data:
                    raise RuntimeError("slow stream ended before its first delta")
                seen += data
            opened += 1
        try:
            await release.wait()
        finally:
            response.close()

    tasks = [asyncio.create_task(asyncio.wait_for(hold(), max_s)) for _ in range(count)]
    deadline = time.monotonic() + max_s / 2
    while opened < count and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.0)
    with_streams, upstream_open = rss_kib(proxy_pid), (await mock_stats(mock_url))["open"] - 1
    release.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    await session.close()
    await asyncio.sleep(2.0)
    after = rss_kib(proxy_pid)
    return {"streams": opened, "upstream_open": upstream_open, "rss_before_kib": before,
            "rss_with_streams_kib": with_streams, "rss_after_close_kib": after,
            "kib_per_stream": (with_streams - before) / max(opened, 1)}
