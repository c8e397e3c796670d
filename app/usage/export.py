"""Usage as CSV: one row per user x UTC day x model x provider, with tokens and cost (``GET
/admin/usage/export.csv``, the dashboard's download link). Read from the per-user day buckets
(app/store/reports.py), so a range is whole UTC days and reaches as far back as day buckets are
kept. Cells a spreadsheet would run as a formula are quoted as the audit export does
(app/records/csv_cells.py ``csv_cell``). A deleted user's rows show their pseudonym (app/admin/lifecycle.py).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from app.records.csv_cells import csv_cell
from app.errors import InvalidRequest
from app.records.buckets import floor

COLUMNS = ("date", "user_id", "user_name", "user_email", "provider", "model", "requests", "errors",
           "input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_creation_1h_input_tokens",
           "cache_read_input_tokens", "total_tokens", "cost_usd", "cost_usd_micros", "cost_estimated_requests",
           "cost_unknown_requests")
MAX_DAYS = 400
DEFAULT_DAYS = 30


def export_range(start: datetime | None, end: datetime | None, now: datetime) -> tuple[datetime, datetime]:
    """``[first UTC day, day after the last)``: ``start`` rounded down to its UTC day (default: 30
    days before ``end``), ``end`` (default now) up to the next one. InvalidRequest past MAX_DAYS."""
    end = end or now
    stop = floor(end - timedelta(microseconds=1), "day") + timedelta(days=1)
    first = floor(start or stop - timedelta(days=DEFAULT_DAYS), "day")
    if first >= stop:
        raise InvalidRequest("from: must be before to")
    if stop - first > timedelta(days=MAX_DAYS):
        raise InvalidRequest(f"the range is longer than {MAX_DAYS} days; export it in parts")
    return first, stop


def to_rows(buckets: Iterable[Mapping[str, Any]], names: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Day bucket documents + ``{user_id: {"name", "email"}}`` -> rows keyed by COLUMNS."""
    rows = []
    for doc in buckets:
        start = doc["start"] if doc["start"].tzinfo else doc["start"].replace(tzinfo=UTC)
        user = names.get(doc.get("user_id") or "", {})
        tokens = sum(int(doc.get(n) or 0) for n in ("input_tokens", "output_tokens", "cache_creation_input_tokens",
                                                      "cache_read_input_tokens"))
        micros = int(doc.get("cost_usd_micros") or 0)
        rows.append({
            "date": start.date().isoformat(), "user_id": doc.get("user_id"), "user_name": user.get("name"),
            "user_email": user.get("email"), "provider": doc.get("provider"), "model": doc.get("model"),
            **{n: int(doc.get(n) or 0) for n in COLUMNS[6:13]}, "total_tokens": tokens,
            "cost_usd": f"{micros / 1_000_000:.6f}", "cost_usd_micros": micros,
            "cost_estimated_requests": int(doc.get("cost_estimated_requests") or 0),
            "cost_unknown_requests": int(doc.get("cost_unknown_requests") or 0)})
    return rows


def to_csv(rows: Iterable[Mapping[str, Any]]) -> str:
    """Rows as CSV text (header COLUMNS, CRLF line ends, formula-safe cells)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([csv_cell(row.get(c)) if isinstance(row.get(c), str) or row.get(c) is None
                         else str(row.get(c)) for c in COLUMNS])
    return out.getvalue()


async def export_usage_csv(db: Any, users: Any, start: datetime | None, end: datetime | None, *,
                           now: datetime | None = None) -> tuple[str, datetime, datetime]:
    """``(csv text, first day, day after the last)`` for ``[start, end)`` (two store round trips:
    the day buckets, the users' names). ``users``: a UserRepository. Raises InvalidRequest."""
    from app.store.reports import user_day_buckets

    first, stop = export_range(start, end, now or datetime.now(UTC))
    buckets = await user_day_buckets(db, first, stop)
    names = await users.get_many(sorted({b["user_id"] for b in buckets if b.get("user_id")}))
    return to_csv(to_rows(buckets, names)), first, stop
