"""Moved to ``app.records.events`` (below the store and the usage domain, so neither imports the other).

Kept only for ``app/proxy/forward.py`` (owned by the request-path work on another branch); delete
this module once that import reads ``from app.records.events import UsageEvent``.
"""

from app.records.events import UsageEvent

__all__ = ["UsageEvent"]
