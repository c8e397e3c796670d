"""CSV cells that are safe to open in a spreadsheet (pure; used by the audit and usage exports)."""

from __future__ import annotations

import json
from typing import Any

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> str:
    """One CSV cell: text as is, other values as JSON; a cell a spreadsheet would run as a formula
    (starting with = + - @, tab or CR) gets a leading `'`."""
    text = "" if value is None else value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return "'" + text if text.startswith(_FORMULA_START) else text
