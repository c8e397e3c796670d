"""bench/proxy_overhead.py's Markdown report: one section per phase that ran (``r`` holds the
results by phase name), and the target verdicts (issue 16's targets where a phase measures one)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from _common import markdown_table
from upstream_client import report as report_clients


def header(args: argparse.Namespace, r: dict[str, Any]) -> list[str]:
    return [f"proxy overhead: proxy on CPU {args.proxy_cpu}, mock upstream + load generator on CPU {args.load_cpu}; "
            f"phases {','.join(args.phases)}; body {args.body_kib} KiB; log level {args.log_level}; usage writes "
            f"{'on (embedded store)' if args.store_writes else 'deferred'} (steady phase: on); load average "
            f"{r['load_before']} (before) {r['load_after']} (after); other processes used "
            f"{r['others_on_proxy_cpu'] * 100:.0f}% of CPU {args.proxy_cpu} during the run", ""]


def latency(r: dict[str, Any]) -> list[str]:
    rows = []
    for kind, label in (("json", "JSON, to last byte"), ("stream", "stream, to first delta")):
        d, p = r["latency"][kind]["direct"], r["latency"][kind]["proxy"]
        rows.append([label, f"{d['p50_ms']:.3f} / {d['p99_ms']:.3f}", f"{p['p50_ms']:.3f} / {p['p99_ms']:.3f}",
                     f"{p['p50_ms'] - d['p50_ms']:.3f} / {p['p99_ms'] - d['p99_ms']:.3f}",
                     f"{p['p50_ms'] / d['p50_ms']:.1f}x", f"{p['proxy_cpu_ms_per_req']:.3f}"])
    return ["### latency at 1 connection", "", *markdown_table(
        ["", "direct p50/p99 ms", "proxy p50/p99 ms", "added p50/p99 ms", "ratio p50", "proxy CPU ms/req"], rows), ""]


def throughput(title: str, runs: dict[str, dict[str, Any]], connections: int) -> list[str]:
    rows = []
    for kind, sides in runs.items():
        base = sides.get("direct") or sides["proxy"]
        for name, t in sides.items():
            proxied = name != "direct"  # the direct run's proxy CPU is the idle proxy's: no ratio to show
            rows.append([kind, name, f"{t['req_per_s']:.0f}", f"{t['req_per_s'] / base['req_per_s']:.2f}",
                         f"{t['proxy_cpu_util'] * 100:.0f}%" if proxied else "–",
                         f"{t['req_per_proxy_cpu_s']:.0f}" if proxied else "–",
                         f"{t['p50_ms']:.2f} / {t['p99_ms']:.2f}", f"{t['upstream_connections']:.0f}"])
    return [f"### {title}, {connections} connections", "", *markdown_table(
        ["kind", "side", "req/s", "vs first row", "proxy CPU", "req per proxy CPU-s", "p50/p99 ms",
         "upstream conns"], rows), ""]


def chunks(args: argparse.Namespace, r: dict[str, Any]) -> list[str]:
    rows = [[name, f"{c['gap_p50_ms']:.1f}", f"{c['gap_min_ms']:.1f}", f"{c['gap_max_ms']:.1f}",
             c["most_deltas_per_read"]] for name, c in r["chunks"].items()]
    return [f"### chunk timing ({args.chunks} deltas sent {args.gap_ms:g} ms apart)", "", *markdown_table(
        ["side", "gap p50 ms", "gap min ms", "gap max ms", "most deltas in one read"], rows), ""]


def rss(r: dict[str, Any]) -> list[str]:
    m = r["rss"]
    return ["### RSS per open stream", "", *markdown_table(
        ["request body", "streams (upstream open)", "RSS before MiB", "with streams MiB", "after close MiB",
         "KiB per open stream"],
        [[f"{m['body_kib']} KiB", f"{m['streams']} ({m['upstream_open']})", f"{m['rss_before_kib'] / 1024:.1f}",
          f"{m['rss_with_streams_kib'] / 1024:.1f}", f"{m['rss_after_close_kib'] / 1024:.1f}",
          f"{m['kib_per_stream']:.1f}"]]), ""]


def events(args: argparse.Namespace, r: dict[str, Any]) -> list[str]:
    rows = [[name, e["streams"], e["events"], f"{e['events_per_read']:.2f}", f"{e['p50_s'] * 1000:.0f}",
             f"{e['proxy_us_per_event']:.1f}", f"{e['mock_us_per_event']:.1f}", f"{e['loadgen_us_per_event']:.1f}"]
            for name, e in r["events"].items()]
    return [f"### CPU per relayed SSE event ({args.deltas}-delta answers, events {args.event_gap_ms:g} ms apart, "
            f"{args.event_concurrency} at a time)", "", *markdown_table(
                ["side", "answers", "events", "events per client read", "p50 ms per answer",
                 "proxy CPU µs/event", "mock CPU µs/event", "load generator CPU µs/event"], rows),
            "", "(the direct row's proxy CPU is the idle proxy's: the noise floor)", ""]


def steady(args: argparse.Namespace, r: dict[str, Any]) -> list[str]:
    s = r["steady"]
    rows = [[x["round"], x["requests"], x["cumulative_requests"], f"{x['req_per_s']:.0f}",
             f"{x['proxy_cpu_util'] * 100:.0f}%", f"{x['req_per_proxy_cpu_s']:.0f}", f"{x['p50_ms']:.1f}",
             f"{x['proxy_rss_kib'] / 1024:.0f}"] for x in s["rounds"]]
    return [f"### embedded store steady state ({s['kind']}, {args.connections} connections, usage writes on, "
            f"{args.steady_rounds} rounds of {args.steady_round_s:g} s)", "", *markdown_table(
                ["round", "requests", "cumulative", "req/s", "proxy CPU", "req per proxy CPU-s", "p50 ms",
                 "proxy RSS MiB"], rows), "", f"last/first round req per proxy CPU-s: {s['last_over_first']:.2f}", ""]


def checks(r: dict[str, Any]) -> list[str]:
    c = r["checks"]
    return [f"checks: sniffio {c['sniffio'] or 'MISSING'}; middleware {', '.join(c['middleware'])} "
            f"(BaseHTTPMiddleware: {', '.join(c['base_http_middleware']) or 'none'})", ""]


def targets(args: argparse.Namespace, r: dict[str, Any]) -> dict[str, bool]:
    """Issue 16's targets for the phases that ran (name -> met)."""
    out: dict[str, bool] = {}
    if "latency" in r:
        lat = r["latency"]
        out["added_p50_json_ms<=1.0"] = lat["json"]["proxy"]["p50_ms"] - lat["json"]["direct"]["p50_ms"] <= 1.0
        out["added_p50_stream_ms<=1.0"] = lat["stream"]["proxy"]["p50_ms"] - lat["stream"]["direct"]["p50_ms"] <= 1.0
    if "limits" in r:
        out["req_per_cpu_s_json_with_limits>=1200"] = r["limits"]["json"]["proxy+limits"]["req_per_proxy_cpu_s"] >= 1200
        out["req_per_cpu_s_stream_with_limits>=1000"] = \
            r["limits"]["stream"]["proxy+limits"]["req_per_proxy_cpu_s"] >= 1000
    if "events" in r:
        out["proxy_us_per_event<=25"] = r["events"]["proxy"]["proxy_us_per_event"] <= 25
    if "rss" in r and r["rss"]["body_kib"] >= 100:
        out["kib_per_stream_100k_bodies<=50"] = r["rss"]["kib_per_stream"] <= 50
    if "chunks" in r:
        out["chunks_not_bursted"] = r["chunks"]["proxy"]["gap_min_ms"] >= 0.8 * args.gap_ms
    if "steady" in r:
        out["steady_last/first>=0.85"] = r["steady"]["last_over_first"] >= 0.85
    return out


def report(args: argparse.Namespace, r: dict[str, Any]) -> list[str]:
    """All sections that ran, in a fixed order; stores the verdicts in ``r["targets"]``."""
    lines = header(args, r)
    if "latency" in r:
        lines += latency(r)
    if "throughput" in r:
        lines += throughput("closed loop", r["throughput"], args.connections)
    if "limits" in r:
        lines += throughput("with limits on the key and its user (never refusing) vs without", r["limits"],
                            args.connections)
        check = json.dumps({k: r["limits_check"].get(k) for k in ("limits", "quota")}, separators=(",", ":"))
        lines += [f"limits in force (GET /v1/usage/me with the limited key): {check[:400]}", ""]
    if "events" in r:
        lines += events(args, r)
    if "chunks" in r:
        lines += chunks(args, r)
    if "rss" in r:
        lines += rss(r)
    if "steady" in r:
        lines += steady(args, r)
    if "checks" in r:
        lines += checks(r)
    if "clients" in r:
        lines += report_clients(r["clients"]) + [""]
    r["targets"] = targets(args, r)
    lines += ["targets: " + ("; ".join(f"{k} {'MET' if v else 'MISSED'}" for k, v in r["targets"].items()) or "-"),
              "", "phase seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in r["phase_s"].items())]
    return lines
