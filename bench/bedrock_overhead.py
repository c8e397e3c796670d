"""What the proxy adds on the Bedrock path: time to the first token of a streamed answer through the
proxy (``PROXY_FORCE_FALLBACK=true``, so every request goes to Bedrock) vs aioboto3's ConverseStream
called directly, both against the same fake Bedrock (tests/fakes/bedrock_server.py, which speaks the
AWS event-stream framing), in alternating rounds of one run.

    .venv/bin/python bench/bedrock_overhead.py [--quick] [--requests 400] [--json out.json]
    .venv/bin/python bench/bedrock_overhead.py --quick --app-root /work/main   # A/B: another checkout's app

Phase ``events`` (on by default; ``--deltas 0`` skips it): proxy CPU per relayed stream event. A second
fake Bedrock streams ``--deltas`` text deltas (+5 other events) ``--event-gap-ms`` apart, each in its
own write (as a model emits tokens, so each reaches the proxy in its own read); ``--event-streams``
streams through the proxy, ``--event-concurrency`` at a time; the proxy's CPU divided by the events
the client counted (``message_start`` .. ``message_stop``, pings excluded), and the events per client read.

Layout (2+ CPUs): the proxy pinned to CPU 1; the fake Bedrock (its own process, uvicorn) and this
load generator on CPU 0. The direct side sends the Converse request the proxy would send (built
with the proxy's own ``to_converse_request``) through one long-lived aioboto3 client, as the proxy
keeps its clients; it stops the clock at the first ``contentBlockDelta``. The proxy side sends the
Anthropic request over aiohttp and stops at the first ``content_block_delta``. Both read the answer
to its end. Target (issue 16): added p50 <= 2 ms. Prints Markdown; writes JSON to bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from collections.abc import Awaitable, Callable
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import (PYTHON, ROOT, Admin, Process, cpu_s, load_average, markdown_table, percentile,
                     pinned, results_path, start_proxy)
from _phases import Target

ADMIN_PASSWORD = "bench-admin-password-123"
MODEL = "claude-sonnet-4-5-20250929"
AWS_ENV = {"AWS_ACCESS_KEY_ID": "AKIABENCHBENCHBENCH0", "AWS_SECRET_ACCESS_KEY": "bench-secret-access-key",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}
HEADERS = {"content-type": "application/json", "anthropic-version": "2023-06-01", "x-api-key": "sk-ant-bench"}
ANSWER = "Hello from the benchmark's fake Bedrock, streamed in a few deltas."


def serve_fake(deltas: int = 0, gap_ms: float = 0.0) -> None:
    """``--serve-fake``: a FakeBedrock streaming ``ANSWER`` (16 characters per delta) on a free
    loopback port with uvicorn; prints ``PORT <n>`` and serves until killed. ``deltas`` > 0: that
    many 4-character deltas instead, ``gap_ms`` apart (the ``events`` phase).

    The listening socket is made with ``proto=IPPROTO_TCP``: asyncio sets TCP_NODELAY on accepted
    connections only when the listening socket's ``proto`` says TCP (``base_events._set_nodelay``),
    and a plain ``socket.socket()`` has proto 0. Without it every answer's body waits ~40 ms behind
    its headers (Nagle's algorithm against the client's delayed ACK), on both sides of the comparison.
    """
    import uvicorn

    from tests.fakes.bedrock_server import FakeBedrock, stream_text

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(2048)  # connections queue until uvicorn accepts them
    reply = (stream_text("abcd" * deltas, chunk=4, delay_s=gap_ms / 1000) if deltas
             else stream_text(ANSWER, chunk=16))
    server = uvicorn.Server(uvicorn.Config(FakeBedrock(default=reply), log_level="warning"))
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    asyncio.run(server.serve(sockets=[sock]))


def start_fake(cpu: int, deltas: int = 0, gap_ms: float = 0.0) -> Process:
    argv = [PYTHON, str(Path(__file__).resolve()), "--serve-fake", "--deltas", str(deltas), "--event-gap-ms", str(gap_ms)]
    popen = subprocess.Popen(pinned(cpu, argv),
                             stdout=subprocess.PIPE, cwd=ROOT, env={**os.environ, **AWS_ENV})
    assert popen.stdout is not None
    line = popen.stdout.readline().decode()
    if not line.startswith("PORT "):
        popen.kill()
        raise RuntimeError(f"fake Bedrock did not start: {line!r}")
    return Process(popen, f"http://127.0.0.1:{int(line.split()[1])}")


def run_queue_wait_s(pid: int) -> float:
    """Seconds ``pid``'s main thread (the proxy's event loop) spent runnable but waiting for its CPU
    (``/proc/<pid>/schedstat``, field 2, ns): what other processes on that CPU cost it in latency."""
    with open(f"/proc/{pid}/schedstat") as f:
        return int(f.read().split()[1]) / 1e9


def anthropic_params() -> dict[str, Any]:
    return {"model": MODEL, "max_tokens": 64, "stream": True,
            "messages": [{"role": "user", "content": "lorem ipsum " * 80}]}


async def direct_ttft(client: Any, request: dict[str, Any]) -> float:
    """Seconds from the ConverseStream call to its first contentBlockDelta (stream read to its end)."""
    t0 = time.perf_counter()
    first = None
    response = await client.converse_stream(**request)
    async for event in response["stream"]:
        if first is None and "contentBlockDelta" in event:
            first = time.perf_counter() - t0
    if first is None:
        raise RuntimeError("direct: stream without contentBlockDelta")
    return first


async def measure(fake_url: str, proxy: Target, proxy_pid: int, n: int, warmup: int, rounds: int,
                  max_s: float) -> dict[str, Any]:
    import aioboto3

    from app.bedrock.models import resolve_model
    from app.bedrock.request import to_converse_request

    params = anthropic_params()
    request = to_converse_request(params, resolve_model(MODEL, overrides={}, profile_prefix="us"), betas=[])
    body = json.dumps(params).encode()
    samples: dict[str, list[float]] = {"direct": [], "proxy": []}
    deadline = time.monotonic() + max_s
    proxy_cpu_s = proxy_wait_s = 0.0
    async with aioboto3.Session().client("bedrock-runtime", region_name="us-east-1", endpoint_url=fake_url) as client, \
            proxy.session(1) as session:
        calls = {"direct": lambda: direct_ttft(client, request), "proxy": lambda: proxy.stream(session, body)}
        for call in calls.values():
            for _ in range(warmup):
                await call()
        for _ in range(rounds):
            for name, call in calls.items():
                cpu0, wait0 = cpu_s(proxy_pid), run_queue_wait_s(proxy_pid)
                for _ in range(n // rounds):
                    if time.monotonic() > deadline:
                        break
                    samples[name].append(await call())
                if name == "proxy":
                    proxy_cpu_s += cpu_s(proxy_pid) - cpu0
                    proxy_wait_s += run_queue_wait_s(proxy_pid) - wait0
    out: dict[str, Any] = {}
    for name, values in samples.items():
        ms = [v * 1000 for v in values]
        out[name] = {"n": len(ms), "p50_ms": percentile(ms, 50), "p90_ms": percentile(ms, 90),
                     "p99_ms": percentile(ms, 99)}
    out["proxy"]["proxy_cpu_ms_per_req"] = proxy_cpu_s * 1000 / max(1, len(samples["proxy"]))
    out["proxy"]["proxy_run_queue_wait_ms_per_req"] = proxy_wait_s * 1000 / max(1, len(samples["proxy"]))
    out["added_p50_ms"] = out["proxy"]["p50_ms"] - out["direct"]["p50_ms"]
    return out


async def count_events(session: Any, url: str, headers: dict[str, str], body: bytes) -> tuple[int, int]:
    """One stream through the proxy read to its end: (SSE events but pings, reads that carried data)."""
    events = pings = reads = 0
    tail = b""
    async with session.post(url + "/v1/messages", data=body, headers=headers) as r:
        if r.status != 200:
            raise RuntimeError(f"events phase: {r.status}")
        async for data in r.content.iter_any():
            reads += 1
            both = tail + data  # a frame name may be split between two reads
            events += both.count(b"event: ") - tail.count(b"event: ")
            pings += both.count(b"event: ping\n") - tail.count(b"event: ping\n")
            tail = data[-16:]
    return events - pings, reads


async def measure_events(proxy: Target, proxy_pid: int, streams: int, concurrency: int) -> dict[str, Any]:
    """Proxy CPU per relayed event over ``streams`` long streams, ``concurrency`` at a time (1 warm-up)."""
    body = json.dumps(anthropic_params()).encode()
    async with proxy.session(concurrency) as session:
        await count_events(session, proxy.url, proxy.headers, body)
        cpu0, t0 = cpu_s(proxy_pid), time.monotonic()
        totals = [0, 0]

        async def worker(n: int) -> None:
            for _ in range(n):
                events, reads = await count_events(session, proxy.url, proxy.headers, body)
                totals[0] += events
                totals[1] += reads

        await asyncio.gather(*(worker(streams // concurrency) for _ in range(concurrency)))
        cpu = cpu_s(proxy_pid) - cpu0
    events, reads = totals
    return {"streams": streams // concurrency * concurrency, "events": events, "wall_s": time.monotonic() - t0,
            "proxy_cpu_s": cpu, "proxy_cpu_us_per_event": cpu * 1e6 / max(1, events),
            "events_per_read": events / max(1, reads)}


def report(r: dict[str, Any]) -> list[str]:
    d, p = r["direct"], r["proxy"]
    rows = [["aioboto3 ConverseStream, direct", d["n"], f"{d['p50_ms']:.2f}", f"{d['p90_ms']:.2f}",
             f"{d['p99_ms']:.2f}", ""],
            ["through the proxy (forced fallback)", p["n"], f"{p['p50_ms']:.2f}", f"{p['p90_ms']:.2f}",
             f"{p['p99_ms']:.2f}", f"{p['proxy_cpu_ms_per_req']:.2f}"]]
    added = r["added_p50_ms"]
    return [f"bedrock overhead: proxy on CPU 1, fake Bedrock + load generator on CPU 0; load average "
            f"{r['load_before']} (before) {r['load_after']} (after)", "",
            "### time to first token, 1 connection", "",
            *markdown_table(["side", "n", "p50 ms", "p90 ms", "p99 ms", "proxy CPU ms/req"], rows), "",
            f"added p50: {added:.2f} ms (target <= 2 ms: {'MET' if added <= 2 else 'MISSED'}); "
            f"wall {r['wall_s']:.0f} s; the proxy's event loop waited {p['proxy_run_queue_wait_ms_per_req']:.2f} ms "
            "per request for its CPU (other processes on it)", *report_events(r.get("events"))]


def report_events(e: dict[str, Any] | None) -> list[str]:
    if not e:
        return []
    return ["", "### proxy CPU per relayed stream event", "",
            *markdown_table(["streams", "events", "events per client read", "proxy CPU s", "proxy CPU µs/event"],
                            [[e["streams"], e["events"], f"{e['events_per_read']:.2f}", f"{e['proxy_cpu_s']:.2f}",
                              f"{e['proxy_cpu_us_per_event']:.1f}"]]),
            f"({e['deltas']} deltas {e['gap_ms']} ms apart per stream, {e['concurrency']} at a time; "
            f"CPU from /proc, 10 ms ticks)"]


def run_phase(args: argparse.Namespace, workdir: Path, log_name: str,
              run: Callable[[Target, int, str], Awaitable[dict[str, Any]]], *, deltas: int = 0,
              gap_ms: float = 0.0) -> dict[str, Any]:
    """A fake Bedrock (``deltas``/``gap_ms``: see ``serve_fake``) and a proxy in front of it,
    ``run(target, proxy_pid, fake_url)``, both stopped after; adds the load averages and wall time."""
    fake = start_fake(args.load_cpu, deltas, gap_ms)
    proxy = None
    try:
        env = {"PROXY_SECRET_KEY": "bench-secret-key-0123456789-abcdefghijklmnop",
               "PROXY_ADMIN_PASSWORD": ADMIN_PASSWORD, "PROXY_FORCE_FALLBACK": "true",
               "PROXY_BEDROCK_ENDPOINT_URL": fake.url, "PROXY_BEDROCK_REGION": "us-east-1",
               # usage writes deferred past the run, as in proxy_overhead.py
               "PROXY_USAGE_FLUSH_INTERVAL_S": "3600", "PROXY_USAGE_BATCH_SIZE": "1000000",
               "PROXY_USAGE_QUEUE_MAX": "1000000", "PROXY_USAGE_SWEEP_INTERVAL_S": "3600", **AWS_ENV}
        proxy = start_proxy(args.proxy_cpu, "http://127.0.0.1:9", env, workdir / log_name, args.app_root)
        admin = Admin(proxy.url, ADMIN_PASSWORD)
        target = Target("proxy", proxy.url, {**HEADERS, "x-proxy-key": admin.issue_key("bench").key})
        admin.close()
        load_before, t0 = load_average(), time.monotonic()
        results = asyncio.run(run(target, proxy.pid, fake.url))
        results.update(load_before=load_before, load_after=load_average(), wall_s=time.monotonic() - t0)
        return results
    finally:
        if proxy is not None:
            proxy.stop(kill=True)
        fake.stop(kill=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve-fake", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="fewer requests (about 15 s)")
    parser.add_argument("--requests", type=int, help="per side (default 1000; quick 200)")
    parser.add_argument("--proxy-cpu", type=int, default=1)
    parser.add_argument("--load-cpu", type=int, default=0)
    parser.add_argument("--app-root", type=Path, help="run the proxy's app package from this tree (A/B runs)")
    parser.add_argument("--json", type=Path, help="write the results here (default bench/results/...)")
    parser.add_argument("--deltas", type=int, default=500, help="events phase: text deltas per stream (0: skip)")
    parser.add_argument("--event-gap-ms", type=float, default=1.0, help="events phase: ms between events")
    parser.add_argument("--event-streams", type=int, help="events phase: streams (default 24; quick 12)")
    parser.add_argument("--event-concurrency", type=int, default=4)
    args = parser.parse_args()
    if args.serve_fake:
        serve_fake(args.deltas, args.event_gap_ms)
        return
    n = args.requests or (200 if args.quick else 1000)
    os.environ.update(AWS_ENV)
    os.sched_setaffinity(0, {args.load_cpu})
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    workdir = Path(tempfile.mkdtemp(prefix="bedrock-bench-"))
    results = run_phase(args, workdir, "proxy.log", lambda target, pid, fake_url: measure(
        fake_url, target, pid, n, 30, 4, 240))
    if args.deltas > 0:
        streams = args.event_streams or (12 if args.quick else 24)
        results["events"] = run_phase(args, workdir, "proxy-events.log", lambda target, pid, _: measure_events(
            target, pid, streams, args.event_concurrency), deltas=args.deltas, gap_ms=args.event_gap_ms)
        results["events"].update(deltas=args.deltas, gap_ms=args.event_gap_ms, concurrency=args.event_concurrency)
    print("\n".join(report(results)))
    out = args.json or results_path("bedrock_overhead")
    out.write_text(json.dumps(results, indent=2))
    print(f"\n(proxy log: {workdir / 'proxy.log'}; results {out})")


if __name__ == "__main__":
    main()
