"""Which quotas and rate limits exist, and validating the ``limits`` object an admin sets (pure).

Limits (``limits`` on the key or user document; every field optional):

==================== ===================================== ============================
field                 meaning                               window (UTC, fixed)
==================== ===================================== ============================
requests_per_minute   requests admitted                     the current minute
tokens_per_minute     tokens used (all four counters)       the current minute
tokens_per_day        tokens used                           the current UTC day
tokens_per_month      tokens used                           the current UTC month
cost_usd_per_day      cost in USD                           the current UTC day
cost_usd_per_month    cost in USD                           the current UTC month
==================== ===================================== ============================

A limit is a ``LimitSpec`` (metric x window); the admission (app/usage/admission.py) turns each
limit set on a scope (today ``key`` and ``user``; a group or the organization later) into one
shared counter per window. Counts are integers in ``units``: requests, tokens, micro-USD.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from app.errors import InvalidRequest
from app.records.buckets import Granularity

Metric = Literal["requests", "tokens", "cost"]
MICROS_PER_USD = 1_000_000


@dataclass(frozen=True, slots=True)
class LimitSpec:
    name: str
    window: Granularity
    metric: Metric

    def units(self, value: float) -> int:
        """A limit's value -> integer units of its counter (cost: USD -> micro-USD, rounded down)."""
        return int(value * MICROS_PER_USD) if self.metric == "cost" else int(value)


LIMITS: dict[str, LimitSpec] = {spec.name: spec for spec in (
    LimitSpec("requests_per_minute", "minute", "requests"),
    LimitSpec("tokens_per_minute", "minute", "tokens"),
    LimitSpec("tokens_per_day", "day", "tokens"),
    LimitSpec("tokens_per_month", "month", "tokens"),
    LimitSpec("cost_usd_per_day", "day", "cost"),
    LimitSpec("cost_usd_per_month", "month", "cost"),
)}
MAX_LIMIT = 10**15
UNIT = {"requests": "requests", "tokens": "tokens", "cost": "USD"}


def merge_limits(current: Mapping[str, Any] | None, patch: Mapping[str, Any] | None) -> dict[str, Any]:
    """Apply a PATCH ``limits`` object to the stored limits; returns the new limits.

    ``patch`` None clears every limit; a field set to None clears that limit. Counts
    (``requests_*``, ``tokens_*``) must be integers >= 1; ``cost_usd_*`` numbers > 0 (USD).
    Raises InvalidRequest (400) naming the bad field.
    """
    if patch is None:
        return {}
    if not isinstance(patch, Mapping):
        raise InvalidRequest("limits: expected an object or null")
    unknown = sorted(set(patch) - set(LIMITS))
    if unknown:
        raise InvalidRequest(f"limits: unknown field(s) {', '.join(unknown)}; allowed: {', '.join(LIMITS)}")
    merged = {k: v for k, v in (current or {}).items() if k in LIMITS}
    for name, value in patch.items():
        if value is None:
            merged.pop(name, None)
            continue
        spec = LIMITS[name]
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise InvalidRequest(f"limits.{name}: expected a number or null")
        if spec.metric == "cost":
            if not 0 < value <= MAX_LIMIT:
                raise InvalidRequest(f"limits.{name}: must be > 0 (USD)")
            merged[name] = float(value)
        else:
            if value != int(value) or not 1 <= value <= MAX_LIMIT:
                raise InvalidRequest(f"limits.{name}: must be a whole number >= 1")
            merged[name] = int(value)
    return merged


def effective_limits(raw: Mapping[str, Any] | None) -> dict[str, float]:
    """The usable limits in a stored ``limits`` object (unknown or invalid entries are ignored)."""
    out: dict[str, float] = {}
    for name, value in (raw or {}).items():
        if name in LIMITS and isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
            out[name] = value
    return out
