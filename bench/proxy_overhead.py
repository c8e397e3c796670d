"""What the proxy adds: the real proxy process in front of a fast mock upstream on loopback, side by
side with the same mock called directly, in one run.

    .venv/bin/python bench/proxy_overhead.py [--quick] [--json results.json] [--app-root OTHER_CHECKOUT]

Layout (2+ CPUs): ``claude-code-proxy serve`` pinned to CPU 1 (``taskset -c 1``); the mock upstream
(bench/mock_anthropic.py, raw asyncio) and this load generator (aiohttp, cheaper per request than
httpx, so the generator does not limit the direct baseline) share CPU 0. The proxy runs on the
embedded store with an admin-made user + access key (``x-proxy-key``), quotas on (the defaults),
its JSON request log at INFO into a file. Usage writes are deferred past the run by default
(``--store-writes`` keeps them): on the embedded store they are mongomock doing a database's work
inside the proxy process, which a real MongoDB/DocumentDB does on its own machine.

Measures, direct vs through the proxy, alternating in rounds after a warm-up:
1. latency at 1 connection: p50/p99 of a JSON answer (to the last byte) and of the time to the
   first ``content_block_delta`` of a stream; the added ms and the ratio;
2. closed-loop throughput at ``--connections`` (50): req/s, the proxy's CPU time from
   /proc/<pid>/stat, req per proxy CPU-second (= req/s per core); upstream connections opened;
3. chunk timing: the mock sends ``--chunks`` deltas ``--gap-ms`` apart; the gaps the client sees;
4. RSS per open stream: proxy VmRSS before and with ``--streams`` (500) slow streams open;
5. checks (sniffio importable, no BaseHTTPMiddleware) and bench/upstream_client.py's comparison
   of the upstream client's CPU per request (httpx pools vs aiohttp).
Every loop is bounded by a count and a deadline. Method, results and findings: bench/README.md.
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


sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (cpu_busy_s, cpu_s, issue_access_key, load_average, raise_nofile,  # noqa: E402
                     start_mock, start_proxy)
from _phases import Target, chunk_timing, latency, open_streams, throughput  # noqa: E402
from upstream_client import compare as compare_clients  # noqa: E402
from upstream_client import report as report_clients  # noqa: E402

ADMIN_PASSWORD = "bench-admin-password-123"


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


def request_body(pad_kib: int, *, stream: bool) -> bytes:
    """A Messages request; ``pad_kib`` KiB of user text (Claude Code's real requests carry tens of KiB)."""
    text = ("lorem ipsum " * (pad_kib * 1024 // 12 + 1))[:max(pad_kib * 1024, 2)]
    return json.dumps({"model": "claude-sonnet-4-5-20250929", "max_tokens": 64, "stream": stream,
                       "messages": [{"role": "user", "content": text}]}).encode()


def proxy_env(args: argparse.Namespace) -> dict[str, str]:
    env = {"PROXY_SECRET_KEY": "bench-secret-key-0123456789-abcdefghijklmnop", "PROXY_ADMIN_PASSWORD": ADMIN_PASSWORD,
           "PROXY_LOG_LEVEL": args.log_level}
    if not args.store_writes:  # see the module docstring: no mongomock work inside the measured process
        env.update(PROXY_USAGE_FLUSH_INTERVAL_S="3600", PROXY_USAGE_BATCH_SIZE="1000000",
                   PROXY_USAGE_QUEUE_MAX="1000000", PROXY_USAGE_SWEEP_INTERVAL_S="3600")
    return env


async def run(args: argparse.Namespace, direct: Target, proxy: Target, pids: dict[str, int],
              mock_url: str) -> dict[str, Any]:
    targets = [direct, proxy]
    json_body, stream_body = request_body(args.body_kib, stream=False), request_body(args.body_kib, stream=True)
    results: dict[str, Any] = {"checks": trap_checks()}
    # RSS first, on a young process, so memory freed by earlier phases cannot hide the streams' cost.
    await latency(targets, "json", json_body, 100, 20, 1, 30, pids["proxy"])
    results["rss"] = await open_streams(proxy, stream_body, args.streams, pids["proxy"], 60, mock_url)
    results["latency"] = {kind: await latency(targets, kind, body, args.requests, 50, 4, 60, pids["proxy"])
                          for kind, body in (("json", json_body), ("stream", stream_body))}
    results["chunks"] = await chunk_timing(targets, stream_body, args.gapped_streams, args.chunks, args.gap_ms, 30)
    results["throughput"] = {
        kind: await throughput(targets, kind, body, args.connections, args.duration, 2, args.max_requests, pids,
                               mock_url)
        for kind, body in (("json", json_body), ("stream", stream_body))}
    results["clients"] = await compare_clients(mock_url, args.client_requests)
    return results


def report(args: argparse.Namespace, r: dict[str, Any]) -> list[str]:
    """The table (lines) and target verdicts (also stored in ``r["targets"]``)."""
    lines = [f"proxy overhead: proxy on CPU {args.proxy_cpu}, mock upstream + load generator on CPU {args.load_cpu}; "
             f"body {args.body_kib} KiB; log level {args.log_level}; usage writes "
             f"{'on (embedded store)' if args.store_writes else 'deferred'}; load average {r['load_before']} "
             f"(before) {r['load_after']} (after); other processes used {r['others_on_proxy_cpu'] * 100:.0f}% "
             f"of CPU {args.proxy_cpu} during the run", "",
             "latency at 1 connection          direct p50/p99 ms   proxy p50/p99 ms   added p50/p99 ms   ratio p50"
             "   proxy CPU ms/req"]
    for kind, label in (("json", "JSON, to last byte"), ("stream", "stream, to first delta")):
        d, p = r["latency"][kind]["direct"], r["latency"][kind]["proxy"]
        lines.append(f"  {label:<30} {d['p50_ms']:7.3f} / {d['p99_ms']:6.3f}   {p['p50_ms']:7.3f} / {p['p99_ms']:6.3f}"
                     f"   {p['p50_ms'] - d['p50_ms']:7.3f} / {p['p99_ms'] - d['p99_ms']:6.3f}"
                     f"   {p['p50_ms'] / d['p50_ms']:6.1f}x   {p['proxy_cpu_ms_per_req']:16.3f}")
    lines += ["", f"closed loop, {args.connections} connections   direct req/s   proxy req/s   ratio   proxy CPU"
              "   req per proxy CPU-s   proxy p50/p99 ms   upstream conns"]
    for kind in ("json", "stream"):
        d, p = r["throughput"][kind]["direct"], r["throughput"][kind]["proxy"]
        lines.append(f"  {kind:<30} {d['req_per_s']:10.0f}   {p['req_per_s']:11.0f}"
                     f"   {p['req_per_s'] / d['req_per_s']:5.2f}"
                     f"   {p['proxy_cpu_util'] * 100:7.0f}%   {p['req_per_proxy_cpu_s']:19.0f}"
                     f"   {p['p50_ms']:7.2f} / {p['p99_ms']:6.2f}   {p['upstream_connections']:14.0f}")
    lines += ["", f"chunk timing ({args.chunks} deltas sent {args.gap_ms:g} ms apart)   gap p50 ms   gap min ms"
              "   gap max ms   most deltas in one read"]
    for name in ("direct", "proxy"):
        c = r["chunks"][name]
        lines.append(f"  {name:<44} {c['gap_p50_ms']:10.1f}   {c['gap_min_ms']:10.1f}   {c['gap_max_ms']:10.1f}"
                     f"   {c['most_deltas_per_read']:23d}")
    m = r["rss"]
    lines += ["", f"RSS with {m['streams']} open streams (upstream sees {m['upstream_open']} open): "
              f"before {m['rss_before_kib'] / 1024:.1f} MiB, with {m['rss_with_streams_kib'] / 1024:.1f} MiB, "
              f"after close {m['rss_after_close_kib'] / 1024:.1f} MiB -> {m['kib_per_stream']:.1f} KiB per stream"]
    c = r["checks"]
    proxy_runs = [r["throughput"][kind]["proxy"] for kind in ("json", "stream")]
    lines += ["", f"checks: sniffio {c['sniffio'] or 'MISSING'}; middleware {', '.join(c['middleware'])} "
              f"(BaseHTTPMiddleware: {', '.join(c['base_http_middleware']) or 'none'}); upstream connections "
              f"opened by the proxy in the closed-loop runs: {sum(x['upstream_connections'] for x in proxy_runs):.0f} "
              f"for {sum(x['requests'] for x in proxy_runs):.0f} requests", ""]
    lines += report_clients(r["clients"])
    added_json = r["latency"]["json"]["proxy"]["p50_ms"] - r["latency"]["json"]["direct"]["p50_ms"]
    added_stream = r["latency"]["stream"]["proxy"]["p50_ms"] - r["latency"]["stream"]["direct"]["p50_ms"]
    per_core = r["throughput"]["json"]["proxy"]["req_per_proxy_cpu_s"]
    gap_min = r["chunks"]["proxy"]["gap_min_ms"]
    r["targets"] = {"added_p50_json_ms<=1.5": added_json <= 1.5, "added_p50_stream_ms<=1.5": added_stream <= 1.5,
                    "req_per_core_json>=500": per_core >= 500,
                    "chunks_not_bursted": gap_min >= 0.8 * args.gap_ms}
    lines += ["", "targets: " + "; ".join(f"{k} {'MET' if v else 'MISSED'}" for k, v in r["targets"].items())]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small counts (about 30 s)")
    parser.add_argument("--requests", type=int, help="latency: requests per target and kind (default 1000)")
    parser.add_argument("--duration", type=float, help="throughput: seconds per target and kind (default 8)")
    parser.add_argument("--max-requests", type=int, default=200_000, help="throughput: cap per target and kind")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--streams", type=int, help="open slow streams for RSS (default 500)")
    parser.add_argument("--chunks", type=int, default=5)
    parser.add_argument("--gap-ms", type=float, default=50.0)
    parser.add_argument("--gapped-streams", type=int, help="streams for chunk timing (default 10)")
    parser.add_argument("--client-requests", type=int, help="upstream client comparison: requests (default 3000)")
    parser.add_argument("--body-kib", type=int, default=1)
    parser.add_argument("--log-level", default="INFO", help="proxy PROXY_LOG_LEVEL (INFO: one JSON line per request)")
    parser.add_argument("--store-writes", action="store_true", help="let usage writes run (embedded store)")
    parser.add_argument("--proxy-cpu", type=int, default=1)
    parser.add_argument("--load-cpu", type=int, default=0)
    parser.add_argument("--app-root", type=Path, help="run the proxy's app package from this tree (A/B runs)")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    quick = args.quick
    args.requests = args.requests or (200 if quick else 1000)
    args.duration = args.duration or (2.0 if quick else 8.0)
    args.streams = args.streams or (100 if quick else 500)
    args.gapped_streams = args.gapped_streams or (4 if quick else 10)
    args.client_requests = args.client_requests or (500 if quick else 3000)
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
    proxy = None
    try:
        proxy = start_proxy(args.proxy_cpu, mock.url, proxy_env(args), workdir / "proxy.log", args.app_root)
        key = issue_access_key(proxy.url, ADMIN_PASSWORD)
        headers = {"content-type": "application/json", "anthropic-version": "2023-06-01", "x-api-key": "sk-ant-bench"}
        direct = Target("direct", mock.url, headers)
        via = Target("proxy", proxy.url, {**headers, "x-proxy-key": key})
        pids = {"proxy": proxy.pid, "mock": mock.pid, "loadgen": os.getpid()}
        load_before = load_average()
        t0, busy0, proxy0 = time.monotonic(), cpu_busy_s(args.proxy_cpu), cpu_s(proxy.pid)
        results = asyncio.run(run(args, direct, via, pids, mock.url))
        wall_s = time.monotonic() - t0
        others_s = (cpu_busy_s(args.proxy_cpu) - busy0) - (cpu_s(proxy.pid) - proxy0)
        results.update(load_before=load_before, load_after=load_average(), wall_s=wall_s,
                       others_on_proxy_cpu=max(0.0, others_s / wall_s), args={k: str(v) for k, v in vars(args).items()})
    finally:
        if proxy is not None:
            proxy.stop(kill=True)  # a graceful stop would flush the deferred usage into mongomock first
        mock.stop()
    print("\n".join(report(args, results)))
    print(f"\n(wall {results['wall_s']:.0f} s; proxy log: {workdir / 'proxy.log'})")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
