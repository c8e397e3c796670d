"""Golden-case helpers: JSON cannot hold bytes, so bytes are written as ``{"$bytes_b64": "..."}``."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

GOLDEN = Path(__file__).parent / "golden"


def from_json(value: Any) -> Any:
    """``{"$bytes_b64": s}`` -> ``bytes``, recursively."""
    if isinstance(value, dict):
        if set(value) == {"$bytes_b64"}:
            return base64.b64decode(value["$bytes_b64"])
        return {k: from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_json(v) for v in value]
    return value


def to_json(value: Any) -> Any:
    """``bytes`` -> ``{"$bytes_b64": s}``, recursively."""
    if isinstance(value, (bytes, bytearray)):
        return {"$bytes_b64": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_json(v) for v in value]
    return value


def cases(kind: str) -> list[Path]:
    return sorted((GOLDEN / kind).glob("*.json"))


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())
