"""The embedded store's cost per usage event as data accumulates, without HTTP (issue 16: "The
embedded store must not sink").

    .venv/bin/python bench/embedded_store.py [--events 1000000] [--slice 50000] [--max-seconds 300]
    .venv/bin/python bench/embedded_store.py --plain --events 60000 --slice 10000   # before: plain mongomock

Writes ``--events`` usage events through ``UsageWriter.write_batch`` in batches of 500 (as the
recorder does) into the store ``open_store(None, ...)`` opens (``--plain``: a bare
``AsyncMongoMockClient``, as before), with the app's indexes. Events spread over 20 users x 3 keys x
3 models; their time advances 2 ms per event (500 req/s), so minute and hour buckets accumulate as
in a long run. After each batch it does what the request path reads: the quota's ``window_totals``
for a user and a key, and an access-key lookup by ``key_hash``. Per slice of ``--slice`` events:
events per CPU-second (``time.process_time``), documents per collection and RSS; then the
last/first ratio (target >= 0.85). Bounded by ``--events`` and ``--max-seconds`` (CPU).
Results: bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import results_path

from app.store.mongo import INDEXES, ensure_indexes, open_store
from app.store.usage import BUCKETS, EVENTS, FOLDS, ensure_usage_indexes
from app.store.usage_reads import UsageReader
from app.store.usage_write import UsageWriter
from app.records.events import UsageEvent

MODELS = ("claude-sonnet-4-5-20250929", "claude-opus-4-5-20251101", "claude-haiku-4-5-20251001")
USERS, KEYS_PER_USER, BATCH = 20, 3, 500


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def run(n_events: int, slice_events: int, max_cpu_s: float, plain: bool) -> dict[str, Any]:
    if plain:
        from mongomock_motor import AsyncMongoMockClient

        db = AsyncMongoMockClient(tz_aware=True)["bench"]
    else:
        db = open_store(None, "bench").db
    await ensure_indexes(db, INDEXES)
    await ensure_usage_indexes(db, event_ttl_days=90)
    keys = db["access_keys"]
    await keys.insert_many([{"_id": f"ak_{k}", "key_hash": f"hash_{k}", "user_id": f"usr_{k % USERS}",
                             "created_at": datetime.now(UTC)} for k in range(USERS * KEYS_PER_USER)])
    repo, reader = UsageWriter(db), UsageReader(db)
    t0 = datetime.now(UTC).replace(second=0, microsecond=0)
    rows: list[dict[str, Any]] = []
    written, slice_start_cpu, started_cpu = 0, time.process_time(), time.process_time()
    while written < n_events and time.process_time() - started_cpu < max_cpu_s:
        batch = []
        for i in range(written, min(written + BATCH, n_events)):
            key = i % (USERS * KEYS_PER_USER)
            batch.append(UsageEvent(time=t0 + timedelta(milliseconds=2 * i), user_id=f"usr_{key % USERS}",
                                    access_key_id=f"ak_{key}", provider="anthropic", model=MODELS[i % 3],
                                    input_tokens=100 + i % 50, output_tokens=20, cache_read_input_tokens=5000,
                                    cost_usd_micros=1234, latency_ms=900.0, status=200))
        await repo.write_batch(batch)
        written += len(batch)
        now = batch[-1].time
        windows = (("minute", now.replace(second=0, microsecond=0)),
                   ("hour", now.replace(minute=0, second=0, microsecond=0)),
                   ("day", now.replace(hour=0, minute=0, second=0, microsecond=0)))
        await reader.window_totals("user", batch[-1].user_id, windows)
        await reader.window_totals("key", batch[-1].access_key_id, windows)
        assert await keys.find_one({"key_hash": f"hash_{written % (USERS * KEYS_PER_USER)}"}) is not None
        if written % slice_events == 0 or written >= n_events:
            cpu = time.process_time()
            counts = {name: await db[name].count_documents({}) for name in (EVENTS, BUCKETS, FOLDS)}
            events_in_slice = written - (rows[-1]["written"] if rows else 0)
            rows.append({"written": written, "events_per_cpu_s": events_in_slice / (cpu - slice_start_cpu),
                         **counts, "rss_mib": rss_mib()})
            print(f"{written:>9,} events  {rows[-1]['events_per_cpu_s']:8.0f} events/CPU-s  "
                  f"events {counts[EVENTS]:>7,}  buckets {counts[BUCKETS]:>6,}  folds {counts[FOLDS]:>5,}  "
                  f"RSS {rows[-1]['rss_mib']:.0f} MiB", flush=True)
            slice_start_cpu = time.process_time()
    first, last = rows[0]["events_per_cpu_s"], rows[-1]["events_per_cpu_s"]
    return {"store": "plain mongomock" if plain else "embedded (indexed)", "events": written, "rows": rows,
            "cpu_s": time.process_time() - started_cpu, "last_over_first": last / first}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--slice", type=int, default=50_000, help="events per row (a multiple of 500)")
    parser.add_argument("--max-seconds", type=float, default=600.0, help="stop after this much CPU time")
    parser.add_argument("--plain", action="store_true", help="a bare AsyncMongoMockClient (before)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    result = asyncio.run(run(args.events, args.slice, args.max_seconds, args.plain))
    print(f"\n{result['store']}: {result['events']:,} events in {result['cpu_s']:.0f} CPU-s; "
          f"last/first slice events per CPU-s: {result['last_over_first']:.2f}")
    path = args.json or results_path("embedded_store")
    path.write_text(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
