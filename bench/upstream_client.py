"""CPU per upstream request of the proxy's HTTP client, in this process, against the mock upstream:
``AnthropicUpstream`` (aiohttp directly since issue 16; before, the httpx API over aiohttp with
``httpx-aiohttp``), plain httpx (httpcore's pool, as the proxy used before issue 16), and aiohttp alone
for scale.

    .venv/bin/python bench/upstream_client.py [--requests 3000]   # starts its own mock upstream

Each client sends ``--requests`` JSON requests (after 100 warm-up ones) at 1 and at 50 requests in
flight, closed loop, and reads each body; the figure is this process's CPU time (user + system)
divided by the requests, so the mock's own work is not in it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import start_mock

import httpx

from app.proxy.anthropic import AnthropicUpstream

HEADERS = [("content-type", "application/json"), ("anthropic-version", "2023-06-01"), ("x-api-key", "sk-ant-bench"),
           ("accept-encoding", "identity")]
BODY = b'{"model":"claude-sonnet-4-5-20250929","max_tokens":64,"messages":[{"role":"user","content":"hi"}]}'
Call = Callable[[], Awaitable[None]]


async def cpu_us_per_request(call: Call, requests: int, in_flight: int, max_s: float) -> float:
    """Closed loop, ``in_flight`` workers, at most ``requests`` requests or ``max_s`` seconds."""
    for _ in range(100):
        await call()
    done = 0
    deadline = time.monotonic() + max_s

    async def worker() -> None:
        nonlocal done
        while done < requests and time.monotonic() < deadline:
            done += 1
            await call()

    cpu0 = time.process_time()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    return (time.process_time() - cpu0) / done * 1e6


async def compare(mock_url: str, requests: int, max_s: float = 20.0) -> dict[str, dict[int, float]]:
    """``{client label: {in_flight: CPU us per request}}``."""
    out: dict[str, dict[int, float]] = {}
    upstream = AnthropicUpstream(mock_url, connect_timeout_s=5, read_timeout_s=30)

    async def via_upstream() -> None:
        async with upstream.send("/v1/messages", "mode=json", HEADERS, BODY) as response:
            await response.aread()

    try:
        out["AnthropicUpstream (aiohttp)"] = {
            n: await cpu_us_per_request(via_upstream, requests, n, max_s) for n in (1, 50)}
    finally:
        await upstream.aclose()
    async with httpx.AsyncClient(base_url=mock_url, trust_env=False,
                                 limits=httpx.Limits(max_connections=1000, max_keepalive_connections=1000)) as client:
        async def via_httpx() -> None:
            async with client.stream("POST", "/v1/messages?mode=json", content=BODY, headers=HEADERS) as r:
                await r.aread()

        out["httpx AsyncClient (httpcore, 1 pool)"] = {
            n: await cpu_us_per_request(via_httpx, requests, n, max_s) for n in (1, 50)}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1000), auto_decompress=False) as session:
        async def via_aiohttp() -> None:
            async with session.post(mock_url + "/v1/messages?mode=json", data=BODY, headers=dict(HEADERS)) as r:
                await r.read()

        out["aiohttp ClientSession"] = {n: await cpu_us_per_request(via_aiohttp, requests, n, max_s) for n in (1, 50)}
    return out


def report(results: dict[str, dict[int, float]]) -> list[str]:
    lines = ["upstream client, CPU per request (us)       1 in flight   50 in flight"]
    lines += [f"  {label:<42} {by_n[1]:11.0f}   {by_n[50]:12.0f}" for label, by_n in results.items()]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--cpu", type=int, default=0, help="CPU for this process and the mock")
    args = parser.parse_args()
    os.sched_setaffinity(0, {args.cpu})
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    mock = start_mock(args.cpu)
    try:
        print("\n".join(report(asyncio.run(compare(mock.url, args.requests)))))
    finally:
        mock.stop()


if __name__ == "__main__":
    main()
