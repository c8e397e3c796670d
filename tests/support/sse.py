"""SSE bodies as tests read them."""

from __future__ import annotations

import json
from typing import Any


def sse_events(body: bytes) -> list[tuple[str, Any]]:
    """``(event name, parsed data)`` for each event of an SSE body (``event: `` / ``data: `` lines)."""
    out = []
    for frame in body.strip().split(b"\n\n"):
        lines = dict(line.split(b": ", 1) for line in frame.split(b"\n") if b": " in line)
        out.append((lines[b"event"].decode(), json.loads(lines[b"data"])))
    return out
