"""The users CSV (``users import`` in the CLI, ``POST /admin/users/import``, the dashboard's
import form): one parser, pure. UTF-8 text with a header row naming ``name`` and optionally
``email`` (any order, any case; other columns ignored; a BOM is dropped; blank lines skipped).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from app.errors import InvalidRequest

IMPORT_MAX_ROWS = 10_000
IMPORT_MAX_BYTES = 2_000_000


@dataclass(frozen=True)
class ImportRow:
    name: str
    email: str | None


def parse_import(text: str) -> list[ImportRow]:
    """CSV text -> rows. Raises InvalidRequest naming the line of the first bad row (empty name,
    over-long name, not an e-mail, an e-mail twice in the file, more than IMPORT_MAX_ROWS rows);
    callers write nothing then."""
    if len(text) > IMPORT_MAX_BYTES:
        raise InvalidRequest(f"CSV: larger than {IMPORT_MAX_BYTES // 1_000_000} MB; split the file")
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    try:
        header = [h.strip().lower() for h in reader.fieldnames or []]
    except csv.Error as exc:
        raise InvalidRequest(f"CSV: {exc}") from None
    if "name" not in header:
        raise InvalidRequest("CSV: the header row must name a `name` column (and optionally `email`)")
    rows: list[ImportRow] = []
    seen: set[str] = set()
    try:
        for number, raw in enumerate(reader, start=2):
            row = {(k or "").strip().lower(): (v or "").strip() for k, v in raw.items() if isinstance(v, str)}
            name, email = row.get("name", ""), row.get("email", "") or None
            if not name and not email:
                continue  # blank line
            if not name:
                raise InvalidRequest(f"CSV line {number}: name is empty")
            if len(name) > 200 or (email and (len(email) > 320 or "@" not in email)):
                raise InvalidRequest(f"CSV line {number}: name over 200 characters or not an e-mail address: {email!r}")
            if email and email.lower() in seen:
                raise InvalidRequest(f"CSV line {number}: e-mail {email!r} appears twice")
            if email:
                seen.add(email.lower())
            rows.append(ImportRow(name, email))
            if len(rows) > IMPORT_MAX_ROWS:
                raise InvalidRequest(f"CSV: more than {IMPORT_MAX_ROWS} rows; split the file")
    except csv.Error as exc:
        raise InvalidRequest(f"CSV: {exc}") from None
    return rows
