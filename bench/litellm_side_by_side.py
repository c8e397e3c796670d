"""Our proxy and LiteLLM's proxy side by side, in front of the same mock upstream on loopback, in
interleaved rounds of one run (issue 16's target: >= 10x LiteLLM in req per proxy CPU-second).
Optional and not in CI: it installs LiteLLM into its own venv.

    .venv/bin/python bench/litellm_side_by_side.py [--quick] [--rounds 3] [--litellm-version 1.103.7]

Setup (once, a few minutes): ``bench/results/litellm-venv`` (git-ignored) with
``litellm[proxy]==<version>`` from PyPI. LiteLLM runs as a pure Anthropic pass-through: its
``/anthropic/v1/messages`` route forwards the request unchanged to ``ANTHROPIC_API_BASE`` (the mock),
with no config model list, no master key, no database, the local model cost map and its logs at ERROR
(docs.litellm.ai/docs/pass_through/anthropic_completion). Ours runs as in proxy_overhead.py (embedded
store, admin-made key, quotas on, usage writes deferred, JSON request log at INFO).

Layout (2+ CPUs): both proxies pinned to CPU 1 (only one is loaded at a time); the mock upstream and
this load generator on CPU 0. Each round runs, for direct, ours and LiteLLM in turn: latency at 1
connection (JSON to the last byte, stream to the first delta), then a closed loop at ``--connections``
(JSON, stream) with the loaded proxy's CPU time from /proc. Prints Markdown (ranges over the rounds),
writes JSON to bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (ROOT, Admin, Process, free_port, load_average, markdown_table, percentile,
                     pinned, raise_nofile, results_path, start_mock, start_proxy, wait_until_up)
from _phases import Target, closed_loop
from proxy_overhead import ADMIN_PASSWORD, HEADERS, request_body

VENV = ROOT / "bench" / "results" / "litellm-venv"
KINDS = ("json", "stream")


def ensure_litellm(version: str) -> Path:
    """``VENV/bin/litellm`` at ``version``, installing it (pip, PyPI) when missing or different."""
    python = VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    probe = subprocess.run([str(python), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
                           capture_output=True, text=True)
    if probe.stdout.strip() != version:
        print(f"installing litellm[proxy]=={version} into {VENV} ...", file=sys.stderr, flush=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", f"litellm[proxy]=={version}"], check=True)
    return VENV / "bin" / "litellm"


def start_litellm(cpu: int, upstream_url: str, workdir: Path) -> Process:
    """LiteLLM's proxy on a free port as a pure Anthropic pass-through to ``upstream_url``; waits
    for ``/health/liveliness`` (at most 120 s: its imports are slow)."""
    config = workdir / "litellm.yaml"
    config.write_text("litellm_settings:\n  telemetry: false\n  drop_params: false\n")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LITELLM", "ANTHROPIC", "DATABASE_URL"))}
    env.update(ANTHROPIC_API_BASE=upstream_url, ANTHROPIC_API_KEY="sk-ant-bench", LITELLM_LOG="ERROR",
               LITELLM_LOCAL_MODEL_COST_MAP="True", LITELLM_TELEMETRY="False", NO_DOCS="True")
    log = open(workdir / "litellm.log", "wb")
    popen = subprocess.Popen(pinned(cpu, [str(VENV / "bin" / "litellm"), "--config", str(config), "--host",
                                          "127.0.0.1", "--port", str(port), "--num_workers", "1"]),
                             stdout=log, stderr=subprocess.STDOUT, env=env, cwd=workdir)
    return wait_until_up(Process(popen, f"http://127.0.0.1:{port}", log), "/health/liveliness", "litellm",
                         workdir / "litellm.log", timeout_s=120, interval_s=0.5)


async def latency_ms(target: Target, kind: str, body: bytes, n: int, warmup: int) -> list[float]:
    async with target.session(1) as session:
        call = target.call(kind)
        for _ in range(warmup):
            await call(session, body)
        return [await call(session, body) * 1000 for _ in range(n)]


async def rounds(args: argparse.Namespace, targets: list[Target], pids: dict[str, int]) -> dict[str, Any]:
    """Per side and kind, per round: latency p50 at 1 connection and req per (own) proxy CPU-second."""
    bodies = {kind: request_body(args.body_kib, stream=kind == "stream") for kind in KINDS}
    out: dict[str, Any] = {t.name: {kind: {"p50_ms": [], "req_per_cpu_s": [], "req_per_s": []} for kind in KINDS}
                           for t in targets}
    for _ in range(args.rounds):
        for t in targets:
            for kind in KINDS:
                samples = await latency_ms(t, kind, bodies[kind], args.requests, 20)
                out[t.name][kind]["p50_ms"].append(percentile(samples, 50))
        for t in targets:
            own = {"cpu": pids.get(t.name, pids["ours"])}
            for kind in KINDS:
                run = await closed_loop(t, kind, bodies[kind], args.connections, args.duration, args.max_requests, own)
                acc = out[t.name][kind]
                acc["req_per_s"].append(run["requests"] / run["seconds"])
                acc["req_per_cpu_s"].append(run["requests"] / run["cpu_cpu_s"] if run["cpu_cpu_s"] else float("nan"))
    return out


def span(values: list[float], fmt: str) -> str:
    return f"{min(values):{fmt}}–{max(values):{fmt}}" if len(values) > 1 else f"{values[0]:{fmt}}"


def report(args: argparse.Namespace, r: dict[str, Any]) -> list[str]:
    s = r["sides"]
    rows = []
    for name in ("direct", "ours", "litellm"):
        added = [[p - d for p, d in zip(s[name][k]["p50_ms"], s["direct"][k]["p50_ms"], strict=True)] for k in KINDS]
        rows.append([name, *(span(s[name][k]["p50_ms"], ".2f") for k in KINDS),
                     *(("", "") if name == "direct" else (span(a, ".2f") for a in added)),
                     *(span(s[name][k]["req_per_s"], ".0f") for k in KINDS),
                     *(("", "") if name == "direct" else (span(s[name][k]["req_per_cpu_s"], ".0f") for k in KINDS))])
    ratios = {k: [o / lt for o, lt in zip(s["ours"][k]["req_per_cpu_s"], s["litellm"][k]["req_per_cpu_s"], strict=True)]
              for k in KINDS}
    r["ratio_req_per_cpu_s"] = ratios
    verdict = all(min(v) >= 10 for v in ratios.values())
    return [f"ours vs LiteLLM {r['litellm_version']}: both on CPU {args.proxy_cpu}, mock + load generator on CPU "
            f"{args.load_cpu}; {args.rounds} interleaved rounds; load average {r['load_before']} (before) "
            f"{r['load_after']} (after); ranges over the rounds", "",
            *markdown_table(["side", "p50 JSON ms", "p50 TTFT ms", "added p50 JSON ms", "added p50 TTFT ms",
                             f"req/s JSON @{args.connections}", f"req/s stream @{args.connections}",
                             "req per proxy CPU-s JSON", "req per proxy CPU-s stream"], rows), "",
            f"ours / LiteLLM, req per proxy CPU-s (per round): JSON {span(ratios['json'], '.1f')}x, "
            f"stream {span(ratios['stream'], '.1f')}x (target >= 10x: {'MET' if verdict else 'MISSED'}); "
            f"wall {r['wall_s']:.0f} s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 rounds, short runs (about 1 minute after setup)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 3; quick 2)")
    parser.add_argument("--requests", type=int, help="latency: requests per side, kind and round (default 200)")
    parser.add_argument("--duration", type=float, help="closed loop: seconds per side, kind and round (default 4)")
    parser.add_argument("--max-requests", type=int, default=100_000)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--body-kib", type=int, default=1)
    parser.add_argument("--litellm-version", default="1.103.7")
    parser.add_argument("--proxy-cpu", type=int, default=1)
    parser.add_argument("--load-cpu", type=int, default=0)
    parser.add_argument("--json", type=Path, help="write the results here (default bench/results/...)")
    args = parser.parse_args()
    args.rounds = args.rounds or (2 if args.quick else 3)
    args.requests = args.requests or (60 if args.quick else 200)
    args.duration = args.duration or (2.0 if args.quick else 4.0)
    ensure_litellm(args.litellm_version)
    raise_nofile(4096)
    os.sched_setaffinity(0, {args.load_cpu})
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    workdir = Path(tempfile.mkdtemp(prefix="litellm-bench-"))
    mock = start_mock(args.load_cpu)
    procs: list[Process] = []
    try:
        env = {"PROXY_SECRET_KEY": "bench-secret-key-0123456789-abcdefghijklmnop",
               "PROXY_ADMIN_PASSWORD": ADMIN_PASSWORD, "PROXY_LOG_LEVEL": "INFO",
               "PROXY_USAGE_FLUSH_INTERVAL_S": "3600", "PROXY_USAGE_BATCH_SIZE": "1000000",
               "PROXY_USAGE_QUEUE_MAX": "1000000", "PROXY_USAGE_SWEEP_INTERVAL_S": "3600"}
        ours = start_proxy(args.proxy_cpu, mock.url, env, workdir / "proxy.log")
        procs.append(ours)
        litellm = start_litellm(args.proxy_cpu, mock.url, workdir)
        procs.append(litellm)
        admin = Admin(ours.url, ADMIN_PASSWORD)
        targets = [Target("direct", mock.url, HEADERS),
                   Target("ours", ours.url, {**HEADERS, "x-proxy-key": admin.issue_key("bench").key}),
                   Target("litellm", litellm.url + "/anthropic", HEADERS)]
        admin.close()
        load_before, t0 = load_average(), time.monotonic()
        sides = asyncio.run(rounds(args, targets, {"ours": ours.pid, "litellm": litellm.pid}))
        results = {"sides": sides, "litellm_version": args.litellm_version, "load_before": load_before,
                   "load_after": load_average(), "wall_s": time.monotonic() - t0,
                   "args": {k: str(v) for k, v in vars(args).items()}}
    finally:
        for proc in procs:
            proc.stop(kill=True)
        mock.stop()
    print("\n".join(report(args, results)))
    out = args.json or results_path("litellm_side_by_side")
    out.write_text(json.dumps(results, indent=2))
    print(f"\n(logs in {workdir}; results {out})")


if __name__ == "__main__":
    main()
