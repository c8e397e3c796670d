"""What the proxy adds: the real proxy process in front of a fast mock upstream on loopback, side by
side with the same mock called directly, in one run.

    .venv/bin/python bench/proxy_overhead.py [--quick] [--phases PHASES] [--json results.json]
                                             [--app-root OTHER_CHECKOUT]

Layout (2+ CPUs): ``claude-code-proxy serve`` pinned to CPU 1 (``taskset -c 1``); the mock upstream
(bench/mock_anthropic.py, raw asyncio) and this load generator (aiohttp, cheaper per request than
httpx, so the generator does not limit the direct baseline) share CPU 0. The proxy runs on the
embedded store with an admin-made user + access key (``x-proxy-key``), quotas on (the defaults),
its JSON request log at INFO into a file. Usage writes are deferred past the run by default
(``--store-writes`` keeps them): on the embedded store they are mongomock doing a database's work
inside the proxy process, which a real MongoDB/DocumentDB does on its own machine.

Phases (``--phases``, comma-separated; default ``rss,latency,chunks,throughput,clients``; ``all``),
direct vs through the proxy, alternating in rounds after a warm-up:
- ``latency``: p50/p99 at 1 connection of a JSON answer (to the last byte) and of the time to the
  first ``content_block_delta`` of a stream; the added ms and the ratio;
- ``throughput``: closed loop at ``--connections`` (50): req/s, the proxy's CPU time from
  /proc/<pid>/stat, req per proxy CPU-second (= req/s per core); upstream connections opened;
- ``limits``: the same closed loop through a key whose key and user have limits set (large enough
  never to refuse), alternating with the key without limits;
- ``events``: proxy CPU µs per relayed SSE event, reading ``--deltas`` (1,000)-delta answers;
- ``chunks``: the mock sends ``--chunks`` deltas ``--gap-ms`` apart; the gaps the client sees;
- ``rss``: proxy VmRSS before and with ``--streams`` (500) slow streams open, request bodies of
  ``--rss-body-kib`` KiB (default ``--body-kib``; issue 16 uses 100);
- ``steady``: a second proxy with usage writes on the embedded store, ``--steady-rounds`` closed-loop
  rounds of ``--steady-round-s`` seconds back to back; req per proxy CPU-second per round;
- ``clients``: checks (sniffio importable, no BaseHTTPMiddleware) and bench/upstream_client.py's
  comparison of the upstream client's CPU per request (httpx pools vs aiohttp).
Every loop is bounded by a count and a deadline. Prints Markdown; writes JSON to bench/results/
(or ``--json``). Method, results and findings: bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (Admin, Process, cpu_busy_s, cpu_s, load_average, raise_nofile, results_path,
                     start_mock, start_proxy)
from _phases import Target, chunk_timing, latency, open_streams, throughput
from _report import report
from _steady import steady_state
from _stream_cost import stream_cost
from upstream_client import compare as compare_clients

ADMIN_PASSWORD = "bench-admin-password-123"
PHASES = ("rss", "latency", "chunks", "throughput", "limits", "events", "clients", "steady")
DEFAULT_PHASES = ("rss", "latency", "chunks", "throughput", "clients")
# Large enough never to refuse a benchmark run, so the quota path runs its steady-state checks only.
NEVER_REFUSING_LIMITS = {"requests_per_minute": 10**9, "tokens_per_day": 10**12, "cost_usd_per_month": 10**6}
HEADERS = {"content-type": "application/json", "anthropic-version": "2023-06-01", "x-api-key": "sk-ant-bench"}


def trap_checks() -> dict[str, Any]:
    """The known traps, checked on this interpreter (the proxy runs from the same venv): sniffio
    importable (without it httpx retries a failed import on every request, encode/httpcore#1103);
    no ``BaseHTTPMiddleware`` among the app's middleware (pure ASGI only)."""
    import importlib.metadata
    import importlib.util

    from starlette.middleware.base import BaseHTTPMiddleware

    from app.config import Settings
    from app.main import create_app

    application = create_app(Settings(_env_file=None, secret_key="c" * 40, admin_password=ADMIN_PASSWORD))
    middleware = [m.cls for m in application.user_middleware]
    return {"sniffio": importlib.metadata.version("sniffio") if importlib.util.find_spec("sniffio") else None,
            "middleware": [getattr(c, "__name__", str(c)) for c in middleware],
            "base_http_middleware": [c.__name__ for c in middleware
                                     if isinstance(c, type) and issubclass(c, BaseHTTPMiddleware)]}


async def usage_me(target: Target) -> dict[str, Any]:
    """``GET /v1/usage/me`` for ``target``'s key: its limits and quota use (proof the limits were in force)."""
    async with aiohttp.ClientSession() as session, \
            session.get(target.url + "/v1/usage/me", headers=target.headers) as response:
        body = await response.json()
    return {"status": response.status, "limits": body.get("limits"), "quota": body.get("quota")}


def request_body(pad_kib: int, *, stream: bool) -> bytes:
    """A Messages request; ``pad_kib`` KiB of user text (Claude Code's real requests carry tens of KiB)."""
    text = ("lorem ipsum " * (pad_kib * 1024 // 12 + 1))[:max(pad_kib * 1024, 2)]
    return json.dumps({"model": "claude-sonnet-4-5-20250929", "max_tokens": 64, "stream": stream,
                       "messages": [{"role": "user", "content": text}]}).encode()


def proxy_env(args: argparse.Namespace, *, store_writes: bool) -> dict[str, str]:
    env = {"PROXY_SECRET_KEY": "bench-secret-key-0123456789-abcdefghijklmnop", "PROXY_ADMIN_PASSWORD": ADMIN_PASSWORD,
           "PROXY_LOG_LEVEL": args.log_level}
    if not store_writes:  # see the module docstring: no mongomock work inside the measured process
        env.update(PROXY_USAGE_FLUSH_INTERVAL_S="3600", PROXY_USAGE_BATCH_SIZE="1000000",
                   PROXY_USAGE_QUEUE_MAX="1000000", PROXY_USAGE_SWEEP_INTERVAL_S="3600")
    return env


async def run(args: argparse.Namespace, direct: Target, proxy: Target, limited: Target | None,
              pids: dict[str, int], mock_url: str, phase_s: dict[str, float]) -> dict[str, Any]:
    """The phases on one proxy (all but ``steady``), in a fixed order; ``phase_s`` gets their seconds."""
    targets = [direct, proxy]
    json_body, stream_body = request_body(args.body_kib, stream=False), request_body(args.body_kib, stream=True)
    results: dict[str, Any] = {}

    def timed(name: str) -> None:
        phase_s[name] = time.monotonic() - phase_s.pop("_t0")

    # RSS first, on a young process, so memory freed by earlier phases cannot hide the streams' cost.
    await latency(targets, "json", json_body, 100, 20, 1, 30, pids["proxy"])
    if "rss" in args.phases:
        phase_s["_t0"] = time.monotonic()
        results["rss"] = await open_streams(proxy, request_body(args.rss_body_kib, stream=True), args.streams,
                                            pids["proxy"], 60, mock_url)
        results["rss"]["body_kib"] = args.rss_body_kib
        timed("rss")
    if "latency" in args.phases:
        phase_s["_t0"] = time.monotonic()
        results["latency"] = {kind: await latency(targets, kind, body, args.requests, 50, 4, 60, pids["proxy"])
                              for kind, body in (("json", json_body), ("stream", stream_body))}
        timed("latency")
    if "chunks" in args.phases:
        phase_s["_t0"] = time.monotonic()
        results["chunks"] = await chunk_timing(targets, stream_body, args.gapped_streams, args.chunks, args.gap_ms,
                                               30)
        timed("chunks")
    if "throughput" in args.phases:
        phase_s["_t0"] = time.monotonic()
        results["throughput"] = {
            kind: await throughput(targets, kind, body, args.connections, args.duration, 2, args.max_requests, pids,
                                   mock_url)
            for kind, body in (("json", json_body), ("stream", stream_body))}
        timed("throughput")
    if limited is not None:
        phase_s["_t0"] = time.monotonic()
        results["limits"] = {
            kind: await throughput([proxy, limited], kind, body, args.connections, args.duration * 2, 4,
                                   args.max_requests, pids, mock_url)
            for kind, body in (("json", json_body), ("stream", stream_body))}
        results["limits_check"] = await usage_me(limited)
        timed("limits")
    if "events" in args.phases:
        phase_s["_t0"] = time.monotonic()
        results["events"] = await stream_cost(targets, stream_body, args.deltas, args.event_gap_ms,
                                              args.event_concurrency, args.event_streams, 2, 120, pids)
        timed("events")
    if "clients" in args.phases:
        phase_s["_t0"] = time.monotonic()
        results["checks"] = trap_checks()
        results["clients"] = await compare_clients(mock_url, args.client_requests)
        timed("clients")
    return results


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small counts (about 20 s for the default phases)")
    parser.add_argument("--phases", default=",".join(DEFAULT_PHASES),
                        help=f"comma-separated, from {','.join(PHASES)}; or 'all'")
    parser.add_argument("--requests", type=int, help="latency: requests per target and kind (default 1000)")
    parser.add_argument("--duration", type=float, help="throughput: seconds per target and kind (default 8)")
    parser.add_argument("--max-requests", type=int, default=200_000, help="throughput: cap per target and kind")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--streams", type=int, help="rss: open slow streams (default 500)")
    parser.add_argument("--rss-body-kib", type=int, help="rss: request body KiB (default --body-kib)")
    parser.add_argument("--chunks", type=int, default=5)
    parser.add_argument("--gap-ms", type=float, default=50.0)
    parser.add_argument("--gapped-streams", type=int, help="streams for chunk timing (default 10)")
    parser.add_argument("--deltas", type=int, default=1000, help="events: content_block_delta events per answer")
    parser.add_argument("--event-gap-ms", type=float, default=1.0,
                        help="events: ms between the mock's events (0: the whole answer in one write)")
    parser.add_argument("--event-concurrency", type=int, default=4, help="events: answers in flight")
    parser.add_argument("--event-streams", type=int, help="events: answers per target (default 40)")
    parser.add_argument("--steady-rounds", type=int, default=6, help="steady: rounds (e.g. 120 for a long run)")
    parser.add_argument("--steady-round-s", type=float, default=5.0, help="steady: seconds per round")
    parser.add_argument("--steady-kind", choices=("json", "stream"), default="json")
    parser.add_argument("--client-requests", type=int, help="upstream client comparison: requests (default 3000)")
    parser.add_argument("--body-kib", type=int, default=1)
    parser.add_argument("--log-level", default="INFO", help="proxy PROXY_LOG_LEVEL (INFO: one JSON line per request)")
    parser.add_argument("--store-writes", action="store_true", help="let usage writes run (embedded store)")
    parser.add_argument("--proxy-cpu", type=int, default=1)
    parser.add_argument("--load-cpu", type=int, default=0)
    parser.add_argument("--app-root", type=Path, help="run the proxy's app package from this tree (A/B runs)")
    parser.add_argument("--json", type=Path, help="write the results here (default bench/results/...)")
    args = parser.parse_args()
    args.phases = PHASES if args.phases == "all" else tuple(p for p in args.phases.split(",") if p)
    if unknown := set(args.phases) - set(PHASES):
        parser.error(f"unknown phases: {', '.join(sorted(unknown))}")
    quick = args.quick
    args.requests = args.requests or (200 if quick else 1000)
    args.duration = args.duration or (2.0 if quick else 8.0)
    args.streams = args.streams or (100 if quick else 500)
    args.rss_body_kib = args.rss_body_kib or args.body_kib
    args.gapped_streams = args.gapped_streams or (4 if quick else 10)
    args.event_streams = args.event_streams or (16 if quick else 40)
    args.client_requests = args.client_requests or (500 if quick else 3000)
    return args


def measure(args: argparse.Namespace, mock: Process, workdir: Path, phase_s: dict[str, float],
            proxy_cpu: list[float]) -> dict[str, Any]:
    """The phases that share one proxy (usage writes as ``--store-writes`` says); appends the
    proxy's CPU seconds to ``proxy_cpu``."""
    proxy = start_proxy(args.proxy_cpu, mock.url, proxy_env(args, store_writes=args.store_writes),
                        workdir / "proxy.log", args.app_root)
    try:
        admin = Admin(proxy.url, ADMIN_PASSWORD)
        via = Target("proxy", proxy.url, {**HEADERS, "x-proxy-key": admin.issue_key("bench").key})
        limited = None
        if "limits" in args.phases:
            issued = admin.issue_key("bench-limited")
            admin.set_limits(issued, NEVER_REFUSING_LIMITS)
            limited = Target("proxy+limits", proxy.url, {**HEADERS, "x-proxy-key": issued.key})
        admin.close()
        pids = {"proxy": proxy.pid, "mock": mock.pid, "loadgen": os.getpid()}
        return asyncio.run(run(args, Target("direct", mock.url, HEADERS), via, limited, pids, mock.url, phase_s))
    finally:
        proxy_cpu.append(cpu_s(proxy.pid))  # its whole life, start-up included
        proxy.stop(kill=True)  # a graceful stop would flush the deferred usage into mongomock first


def measure_steady(args: argparse.Namespace, mock: Process, workdir: Path, proxy_cpu: list[float]) -> dict[str, Any]:
    """``steady`` on its own proxy with usage writes on (the embedded store, as a newcomer runs it)."""
    proxy = start_proxy(args.proxy_cpu, mock.url, proxy_env(args, store_writes=True), workdir / "proxy-steady.log",
                        args.app_root)
    try:
        admin = Admin(proxy.url, ADMIN_PASSWORD)
        via = Target("proxy", proxy.url, {**HEADERS, "x-proxy-key": admin.issue_key("bench-steady").key})
        admin.close()
        pids = {"proxy": proxy.pid, "mock": mock.pid, "loadgen": os.getpid()}
        body = request_body(args.body_kib, stream=args.steady_kind == "stream")
        return asyncio.run(steady_state(via, args.steady_kind, body, args.connections, args.steady_rounds,
                                        args.steady_round_s, args.max_requests, pids))
    finally:
        proxy_cpu.append(cpu_s(proxy.pid))  # its whole life, start-up included
        proxy.stop(kill=True)


def main() -> None:
    args = parse_args()
    if len(os.sched_getaffinity(0)) < 2 and args.proxy_cpu == args.load_cpu:
        print("warning: proxy and load share one CPU", file=sys.stderr)
    raise_nofile(args.streams * 4 + 1024)
    os.sched_setaffinity(0, {args.load_cpu})
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    workdir = Path(tempfile.mkdtemp(prefix="proxy-bench-"))
    mock = start_mock(args.load_cpu)
    phase_s: dict[str, float] = {}
    proxy_cpu: list[float] = []
    try:
        load_before = load_average()
        t0, busy0 = time.monotonic(), cpu_busy_s(args.proxy_cpu)
        results: dict[str, Any] = {}
        if set(args.phases) - {"steady"}:
            results = measure(args, mock, workdir, phase_s, proxy_cpu)
        if "steady" in args.phases:
            started = time.monotonic()
            results["steady"] = measure_steady(args, mock, workdir, proxy_cpu)
            phase_s["steady"] = time.monotonic() - started
        wall_s = time.monotonic() - t0
        others_s = (cpu_busy_s(args.proxy_cpu) - busy0) - sum(proxy_cpu)
        results.update(load_before=load_before, load_after=load_average(), wall_s=wall_s, phase_s=phase_s,
                       others_on_proxy_cpu=max(0.0, others_s / wall_s), args={k: str(v) for k, v in vars(args).items()})
    finally:
        mock.stop()
    print("\n".join(report(args, results)))
    out = args.json or results_path("proxy_overhead")
    out.write_text(json.dumps(results, indent=2, default=str))
    print(f"\n(wall {results['wall_s']:.0f} s; proxy logs in {workdir}; results {out})")


if __name__ == "__main__":
    main()
