"""Embedded-store steady state: closed-loop rounds against a proxy whose usage writes go to the
embedded store (mongomock), one row per round, so a fall in req per proxy CPU-second as data
accumulates shows (issue 16: 397 -> 158 over four 6-second rounds; target: within 15 % from the first
thousand requests to a million)."""

from __future__ import annotations

from typing import Any

from _common import rss_kib
from _phases import Target, closed_loop


async def steady_state(target: Target, kind: str, body: bytes, connections: int, rounds: int, round_s: float,
                       max_requests_per_round: int, pids: dict[str, int]) -> dict[str, Any]:
    """``rounds`` back-to-back closed-loop runs of ``round_s`` seconds (each capped at
    ``max_requests_per_round``). Rows: requests, cumulative requests, req/s, proxy CPU share,
    req per proxy CPU-second, p50 ms, proxy RSS (KiB) at the round's end; and last/first ratio."""
    rows: list[dict[str, float]] = []
    total = 0
    for index in range(rounds):
        run = await closed_loop(target, kind, body, connections, round_s, max_requests_per_round, pids)
        latencies = sorted(run.pop("latencies"))
        total += run["requests"]
        rows.append({"round": index + 1, "requests": run["requests"], "cumulative_requests": total,
                     "req_per_s": run["requests"] / run["seconds"],
                     "proxy_cpu_util": run["proxy_cpu_s"] / run["seconds"],
                     "req_per_proxy_cpu_s": run["requests"] / run["proxy_cpu_s"] if run["proxy_cpu_s"] else float("nan"),
                     "p50_ms": latencies[len(latencies) // 2] * 1000 if latencies else float("nan"),
                     "proxy_rss_kib": rss_kib(pids["proxy"])})
    first, last = rows[0]["req_per_proxy_cpu_s"], rows[-1]["req_per_proxy_cpu_s"]
    return {"kind": kind, "rounds": rows, "last_over_first": last / first if first else float("nan")}
