"""The floor under "proxy CPU per relayed SSE event" on this machine: what any relay that writes each
event as it arrives must pay, whatever its own code costs.

    .venv/bin/python bench/event_floor.py [--quick] [--json results.json]

Two measurements, both on the proxy's CPU (1) with the peer on CPU 0:

1. ``send`` cost: a bare Python loop that writes one 130-byte SSE event to a loopback TCP peer and
   sleeps ``--gap-ms`` (0.2), against the same loop without the write; the difference is one
   ``send()``'s CPU (TCP loopback delivers to the receiver in the sender's context).
2. Bare relay: a pure ASGI app under uvicorn (uvloop, httptools, as ``serve`` runs) that forwards the
   request to the mock with aiohttp and sends each read on as it comes: no auth, no tap, no
   middleware, no record. Measured with proxy_overhead.py's ``events`` phase (1,000-delta answers,
   events 1 ms apart, 4 at a time), next to the same phase through ``claude-code-proxy serve``.

Prints Markdown; writes JSON to bench/results/ (or ``--json``). Findings: bench/README.md (issue 16,
third pass). Every loop is bounded by a count and a deadline.
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
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (PYTHON, Admin, Process, free_port, load_average, pinned, results_path, start_mock,
                     start_proxy, wait_until_up)
from _phases import Target
from _stream_cost import stream_cost

ADMIN_PASSWORD = "bench-admin-password-123"
HEADERS = {"content-type": "application/json", "anthropic-version": "2023-06-01", "x-api-key": "sk-ant-bench"}
EVENT = (b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
         b'"delta":{"type":"text_delta","text":"hello"}}\n\n')

# The bare relay, run by ``python -c`` under uvicorn: forwards to PROXY_ANTHROPIC_BASE_URL with aiohttp.
BARE_RELAY = r'''
import os, sys, aiohttp, uvicorn
UP = os.environ["PROXY_ANTHROPIC_BASE_URL"]
session = None
async def app(scope, receive, send):
    global session
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), auto_decompress=False)
                await send({"type": "lifespan.startup.complete"})
            else:
                await session.close()
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["path"] == "/health":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    headers = [(k.decode(), v.decode()) for k, v in scope["headers"] if k not in (b"host", b"content-length")]
    url = UP + scope["path"] + "?" + scope["query_string"].decode()
    async with session.post(url, data=body, headers=headers) as r:
        drop = (b"content-length", b"transfer-encoding", b"connection")
        await send({"type": "http.response.start", "status": r.status,
                    "headers": [(k, v) for k, v in r.raw_headers if k.lower() not in drop]})
        async for chunk in r.content.iter_any():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=False, log_config=None,
            loop="uvloop", http="httptools")
'''


def send_cost(events: int, gap_ms: float, cpu: int, peer_cpu: int) -> dict[str, float]:
    """CPU µs per loop turn with and without one ``send()`` of EVENT to a loopback reader."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    reader = subprocess.Popen(pinned(peer_cpu, [PYTHON, "-c", (
        "import socket,sys\n"
        f"c=socket.create_connection(('127.0.0.1',{port}))\n"
        "c.setsockopt(socket.IPPROTO_TCP,socket.TCP_NODELAY,1)\n"
        "while c.recv(65536): pass\n")]))
    conn, _ = listener.accept()
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    out: dict[str, float] = {}
    try:
        for label, write in (("loop_us", False), ("loop_with_send_us", True), ("loop_us_2", False),
                             ("loop_with_send_us_2", True)):
            c0 = time.process_time()
            for _ in range(events):
                if write:
                    conn.send(EVENT)
                time.sleep(gap_ms / 1000)
            out[label] = (time.process_time() - c0) / events * 1e6
    finally:
        os.sched_setaffinity(0, before)
        conn.close()
        listener.close()
        reader.wait(timeout=10)
    out["send_us"] = ((out["loop_with_send_us"] + out["loop_with_send_us_2"])
                      - (out["loop_us"] + out["loop_us_2"])) / 2
    return out


def start_bare_relay(cpu: int, upstream_url: str, log_path: Path) -> Process:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROXY_")}
    env["PROXY_ANTHROPIC_BASE_URL"] = upstream_url
    log = open(log_path, "wb")
    popen = subprocess.Popen(pinned(cpu, [PYTHON, "-c", BARE_RELAY, str(port)]), stdout=log,
                             stderr=subprocess.STDOUT, env=env)
    return wait_until_up(Process(popen, f"http://127.0.0.1:{port}", log), "/health", "bare relay", log_path,
                         timeout_s=30, interval_s=0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="16 answers per side, 10,000 sends")
    parser.add_argument("--gap-ms", type=float, default=0.2, help="send cost: sleep between events")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    sends, streams = (10_000, 16) if args.quick else (20_000, 32)
    results: dict[str, Any] = {"load_average_before": load_average()}
    results["send"] = send_cost(sends, args.gap_ms, cpu=1, peer_cpu=0)
    body = json.dumps({"model": "claude-sonnet-4-5-20250929", "max_tokens": 64, "stream": True,
                       "messages": [{"role": "user", "content": "x" * 1024}]}).encode()
    mock = start_mock(0)
    workdir = Path(tempfile.mkdtemp(prefix="event-floor-"))
    try:
        bare = start_bare_relay(1, mock.url, workdir / "bare.log")
        try:
            row = asyncio.run(stream_cost([Target("bare", bare.url, HEADERS)], body, 1000, 1, 4, streams, 2,
                                          120, {"proxy": bare.pid}))
            results["bare_relay"] = row["bare"]
        finally:
            bare.stop(kill=True)
        env = {"PROXY_SECRET_KEY": "bench-secret-key-0123456789-abcdefghijklmnop",
               "PROXY_ADMIN_PASSWORD": ADMIN_PASSWORD, "PROXY_LOG_LEVEL": "INFO",
               "PROXY_USAGE_FLUSH_INTERVAL_S": "3600", "PROXY_USAGE_BATCH_SIZE": "1000000",
               "PROXY_USAGE_QUEUE_MAX": "1000000", "PROXY_USAGE_SWEEP_INTERVAL_S": "3600"}
        proxy = start_proxy(1, mock.url, env, workdir / "proxy.log")
        try:
            admin = Admin(proxy.url, ADMIN_PASSWORD)
            key = admin.issue_key("floor").key
            admin.close()
            row = asyncio.run(stream_cost([Target("proxy", proxy.url, {**HEADERS, "x-proxy-key": key})], body,
                                          1000, 1, 4, streams, 2, 120, {"proxy": proxy.pid}))
            results["proxy"] = row["proxy"]
        finally:
            proxy.stop(kill=True)
    finally:
        mock.stop(kill=True)
    results["load_average_after"] = load_average()
    s = results["send"]
    print(f"event floor on this machine; load average {results['load_average_before']} (before) "
          f"{results['load_average_after']} (after)\n")
    print("| what (CPU 1) | CPU µs per event |\n|---|---|")
    print(f"| loop: sleep {args.gap_ms:g} ms | {s['loop_us']:.1f}, {s['loop_us_2']:.1f} |")
    print(f"| loop: send one 130-byte event to a loopback reader + sleep | {s['loop_with_send_us']:.1f}, "
          f"{s['loop_with_send_us_2']:.1f} |")
    print(f"| **one loopback send()** (the difference) | **{s['send_us']:.1f}** |")
    for name, label in (("bare_relay", "bare ASGI relay (uvicorn + aiohttp, nothing else)"),
                        ("proxy", "claude-code-proxy serve")):
        r = results[name]
        print(f"| {label}: relayed SSE event, 1,000-delta answers (events per read "
              f"{r['events_per_read']:.2f}) | {r['proxy_us_per_event']:.1f} |")
    path = args.json or results_path("event_floor")
    path.write_text(json.dumps(results, indent=2))
    print(f"\n(results {path}; logs in {workdir})")


if __name__ == "__main__":
    main()
