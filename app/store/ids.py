"""Tagged, time-ordered ids (pure): ``<tag>_<12 hex: ms since epoch><12 hex: random>``.

Sorting ids sorts by creation time (to the millisecond), which is what the Admin API-style paging
(``after_id`` / ``before_id``) walks. Ids of one millisecond order randomly among themselves.
"""

from __future__ import annotations

import secrets
import time


def new_id(tag: str) -> str:
    """``new_id("spl")`` -> ``"spl_0192f1c2a3b4e5f6a7b8c9d0"`` (24 hex chars after the tag)."""
    return f"{tag}_{int(time.time() * 1000):012x}{secrets.token_hex(6)}"
