"""Reading the audit log for people: filters from query parameters, target ids turned into names,
and CSV. Shared by ``GET /admin/audit`` (app/admin/routes.py) and ``/ui/audit`` (app/ui/audit.py).

At most three store calls per page: the entries, the access keys they name, the users they name
(directly or as a key's owner).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from app.errors import InvalidRequest
from app.store.access_keys import AccessKeyRepository
from app.store.audit import AuditDoc, AuditFilter, AuditRepository
from app.store.users import UserRepository
from app.usage.query import parse_time, parse_zone

MAX_LIMIT = 500
CSV_COLUMNS = ("time", "actor", "action", "target_type", "target_id", "target_name", "ip", "details")
# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection); failed
# logins put attacker-chosen text in ``actor``.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def audit_filter(params: Mapping[str, Any]) -> AuditFilter:
    """Query parameters ``actor``, ``action``, ``target``, ``from``, ``to`` (ISO 8601 dates or times
    in ``tz``, default UTC; a bare date in ``to`` includes that day) -> AuditFilter. Raises
    InvalidRequest naming the field."""
    def text(name: str) -> str | None:
        value = params.get(name)
        return value.strip() or None if isinstance(value, str) else None

    zone = parse_zone(text("tz"))
    since = parse_time(text("from"), zone, name="from")
    to_text = text("to")
    until = parse_time(to_text, zone, name="to")
    if until is not None and to_text is not None and len(to_text) == 10:
        until += timedelta(days=1)
    if since is not None and until is not None and since >= until:
        raise InvalidRequest("from: must be before to")
    return AuditFilter(actor=text("actor"), action=text("action"), target=text("target"), since=since, until=until)


def page_bounds(limit: Any, offset: Any) -> tuple[int, int]:
    """``limit`` (1..MAX_LIMIT) and ``offset`` (>= 0) as ints; InvalidRequest otherwise."""
    try:
        limit_n, offset_n = int(limit), int(offset)
    except (TypeError, ValueError):
        raise InvalidRequest("limit, offset: must be whole numbers") from None
    if not 1 <= limit_n <= MAX_LIMIT or offset_n < 0:
        raise InvalidRequest(f"limit: must be 1..{MAX_LIMIT}; offset: must be >= 0")
    return limit_n, offset_n


@dataclass(frozen=True)
class AuditPage:
    entries: list[AuditDoc]
    names: dict[str, str]  # target id -> what a person reads ("Ada Lovelace", "sk-ccp-ab12… (Ada)")
    has_more: bool


async def read_page(audit: AuditRepository, users: UserRepository, keys: AccessKeyRepository,
                    where: AuditFilter, *, limit: int, offset: int) -> AuditPage:
    """One page of entries, newest first, with names for their targets (three store calls)."""
    rows = await audit.find(where, limit=limit + 1, skip=offset)  # one extra: is there a next page?
    entries = rows[:limit]
    key_ids = [e["target_id"] for e in entries if e.get("target_type") == "access_key" and e.get("target_id")]
    key_docs = await keys.get_many(key_ids)
    user_ids = [e["target_id"] for e in entries if e.get("target_type") == "user" and e.get("target_id")]
    user_ids += [k["user_id"] for k in key_docs.values() if k.get("user_id")]
    user_docs = await users.get_many(user_ids)
    names: dict[str, str] = {uid: u.get("name") or uid for uid, u in user_docs.items()}
    for kid, k in key_docs.items():
        owner = user_docs.get(k.get("user_id") or "")
        label = f"{k.get('prefix') or kid}…"
        if k.get("name"):
            label += f" {k['name']}"
        names[kid] = f"{label} ({owner.get('name')})" if owner and owner.get("name") else label
    return AuditPage(entries=entries, names=names, has_more=len(rows) > limit)


def public_entry(doc: AuditDoc, names: Mapping[str, str]) -> dict[str, Any]:
    """An entry as the API shows it: plus ``target_name`` (None when the target is gone or unnamed)."""
    time = doc.get("time")
    return {"id": doc["_id"], "time": time.isoformat() if time is not None else None, "actor": doc.get("actor"),
            "action": doc.get("action"), "target_type": doc.get("target_type"), "target_id": doc.get("target_id"),
            "target_name": names.get(doc.get("target_id") or ""), "details": doc.get("details") or {},
            "ip": doc.get("ip")}


def csv_cell(value: Any) -> str:
    """One CSV cell: text as is, other values as JSON; a cell a spreadsheet would run as a formula
    (starting with = + - @, tab or CR) gets a leading `'`."""
    text = "" if value is None else value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return "'" + text if text.startswith(_FORMULA_START) else text


def to_csv(entries: Iterable[dict[str, Any]]) -> str:
    """Public entries as CSV (header row ``CSV_COLUMNS``; ``details`` as JSON; cells that a
    spreadsheet would run as a formula get a leading ``'``)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for entry in entries:
        writer.writerow([csv_cell(entry.get(column)) for column in CSV_COLUMNS])
    return out.getvalue()


def wants_csv(format_param: str | None, accept: str | None) -> bool:
    """``?format=csv`` or an ``Accept`` header that names ``text/csv`` (``?format=json`` wins)."""
    if format_param:
        if format_param not in ("csv", "json"):
            raise InvalidRequest("format: must be json or csv")
        return format_param == "csv"
    return "text/csv" in (accept or "")
