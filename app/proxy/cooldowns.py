"""Cooldown and circuit state per client credential: MongoDB for sharing, a short in-process cache.

While a cooldown runs, requests for that credential go straight to Bedrock without touching
Anthropic. The circuit breaker counts 5xx/529/timeouts per credential on this replica; after
``failure_threshold`` of them within ``window_s`` seconds it opens a cooldown of ``open_s`` seconds,
which then applies to every replica through the store.
"""

from __future__ import annotations

import logging
import time
from typing import Any
from collections import deque
from datetime import UTC, datetime, timedelta

from cachetools import TTLCache

from app.store.cooldowns import CooldownRepository

log = logging.getLogger(__name__)
_MISSING: Any = object()  # not cached (a cached None means "no cooldown")


class CooldownTracker:
    """``active(fp) -> reason | None``; ``start(fp, seconds, reason)``; ``record_failure(fp)``."""

    def __init__(self, repo: CooldownRepository, *, cache_ttl_s: float = 2.0, failure_threshold: int = 3,
                 window_s: float = 30.0, open_s: float = 30.0) -> None:
        self._repo = repo
        self._cache: TTLCache[str, tuple[datetime, str] | None] = TTLCache(
            maxsize=10_000, ttl=cache_ttl_s) if cache_ttl_s > 0 else TTLCache(maxsize=1, ttl=1e-9)
        self._failures: TTLCache[str, deque[float]] = TTLCache(maxsize=10_000, ttl=max(window_s, 1.0))
        self._threshold, self._window_s, self._open_s = failure_threshold, window_s, open_s

    async def active(self, fingerprint: str) -> str | None:
        """The reason of a running cooldown, or None. A store failure counts as "no cooldown"."""
        # One lookup (get with a sentinel), not ``in`` then ``[]``: a TTL cache entry can expire
        # between the two, and the read then raised KeyError (a 500 seen under load).
        entry = self._cache.get(fingerprint, _MISSING)
        if entry is _MISSING:
            try:
                doc = await self._repo.get(fingerprint)
            except Exception as exc:  # noqa: BLE001 - routing must not fail on a store hiccup
                log.warning("cooldown read failed: %s", type(exc).__name__)
                return None
            entry = (doc["until"], doc.get("reason") or "cooldown") if doc else None
            self._cache[fingerprint] = entry
        if entry is None or entry[0] <= datetime.now(UTC):
            return None
        return entry[1]

    async def start(self, fingerprint: str, seconds: float, reason: str) -> None:
        until = datetime.now(UTC) + timedelta(seconds=seconds)
        previous = self._cache.get(fingerprint)
        if previous is None or previous[0] < until:
            self._cache[fingerprint] = (until, reason)
        try:
            await self._repo.start(fingerprint, until, reason)
        except Exception as exc:  # noqa: BLE001 - the local cache still holds it
            log.warning("cooldown write failed: %s", type(exc).__name__)

    async def record_failure(self, fingerprint: str) -> bool:
        """Count a 5xx-like failure; returns True when this one opened the circuit."""
        now = time.monotonic()
        failures = self._failures.get(fingerprint) or deque()
        failures.append(now)
        while failures and now - failures[0] > self._window_s:
            failures.popleft()
        self._failures[fingerprint] = failures
        if len(failures) >= self._threshold:
            failures.clear()
            await self.start(fingerprint, self._open_s, "circuit_open")
            return True
        return False
