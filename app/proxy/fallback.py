"""When to serve a request from Bedrock instead of Anthropic: a pure policy, no I/O.

Before the first byte reaches the client:
- 429 -> fall back and start a cooldown for the client's credential, from ``retry-after``
  (seconds or HTTP date) or the ``anthropic-ratelimit-*-reset`` headers of exhausted limits
  (RFC 3339 or epoch seconds), else ``cooldown_default_s``; always capped at ``cooldown_max_s``
  (weekly plan limits can say days). A value that is not a finite number (``nan``, ``inf``), or
  is negative, is ignored; a huge one is capped.
- 529 and 500/502/503/504 -> fall back; they count toward the credential's circuit breaker.
- connect error or timeout before the first byte -> fall back; counts toward the circuit.
- the proxy's own connection pool to Anthropic is full (``UpstreamPoolExhausted``) -> fall back
  with reason ``local_pool_exhausted``, but no cooldown and no circuit count: Anthropic did not
  fail, this replica is at its own limit, and Bedrock has a separate pool. Where no fallback is
  allowed (``anthropic_only``) or Bedrock fails too, the client gets 503 ``overloaded_error`` with
  ``retry-after: 1``, which Claude Code retries (possibly on another replica).
- 401/403 -> returned as they are, unless ``fallback_on_auth_errors``.
- any other status (400, 404, 413, ...) -> returned as it is.
After the first byte there is no fallback (see ``forward.py``).
Sources: https://docs.anthropic.com/en/api/errors, https://docs.anthropic.com/en/api/rate-limits
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
import math
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from app.errors import ProxyError, UpstreamPoolExhausted, UpstreamTimeout, UpstreamUnavailable

SERVER_ERRORS = frozenset({500, 502, 503, 504, 529})
AUTH_ERRORS = frozenset({401, 403})


@dataclass(frozen=True, slots=True)
class Decision:
    """``fall_back``: serve from Bedrock. ``reason``: a short label for logs, usage and metrics.
    ``cooldown_s``: start a cooldown this long (seconds). ``counts_toward_circuit``: a 5xx-like failure."""

    fall_back: bool
    reason: str | None = None
    cooldown_s: float | None = None
    counts_toward_circuit: bool = False


PASS_THROUGH = Decision(fall_back=False)
LOCAL_POOL_EXHAUSTED = "local_pool_exhausted"  # reason, and the note on the usage event


def decide_on_status(status: int, headers: Mapping[str, str], *, now: datetime,
                     fallback_on_auth_errors: bool = False, cooldown_default_s: float = 60.0,
                     cooldown_max_s: float = 3600.0) -> Decision:
    """The decision for an Anthropic response status (``headers``: case-insensitive mapping)."""
    if status == 429:
        return Decision(True, "rate_limited",
                        cooldown_seconds(headers, now=now, default_s=cooldown_default_s, max_s=cooldown_max_s))
    if status == 529:
        return Decision(True, "overloaded", counts_toward_circuit=True)
    if status in SERVER_ERRORS:
        return Decision(True, f"server_error_{status}", counts_toward_circuit=True)
    if status in AUTH_ERRORS and fallback_on_auth_errors:
        return Decision(True, f"auth_error_{status}")
    return PASS_THROUGH


def decide_on_error(error: ProxyError) -> Decision:
    """The decision for a failure before any response head arrived."""
    if isinstance(error, UpstreamPoolExhausted):
        return Decision(True, LOCAL_POOL_EXHAUSTED)  # neither a cooldown nor a circuit count
    if isinstance(error, UpstreamTimeout):
        return Decision(True, "timeout", counts_toward_circuit=True)
    if isinstance(error, UpstreamUnavailable):
        return Decision(True, "connect_error", counts_toward_circuit=True)
    return PASS_THROUGH


def cooldown_seconds(headers: Mapping[str, str], *, now: datetime, default_s: float, max_s: float) -> float:
    """Seconds until Anthropic accepts this credential again, from the 429's headers (see module doc)."""
    wait = _retry_after_s(headers.get("retry-after"), now)
    if wait is None:
        resets = [_reset_s(headers.get(f"{prefix}-reset"), now) for prefix in _exhausted_limits(headers)]
        known = [r for r in resets if r is not None]
        wait = max(known) if known else None
    if wait is None or wait <= 0:
        wait = default_s
    return min(wait, max_s)


def _finite(seconds: float) -> float | None:
    """``seconds`` if it is a finite number; ``nan`` and ``inf`` (``float()`` accepts both, and
    ``min(nan, cap)`` is ``nan``) count as no value."""
    return seconds if math.isfinite(seconds) else None


def _exhausted_limits(headers: Mapping[str, str]) -> list[str]:
    """Header prefixes like ``anthropic-ratelimit-tokens`` whose ``-remaining`` is 0, or whose
    unified ``-status`` says rejected (Claude subscription limits)."""
    prefixes = []
    for name in headers.keys():
        lower = name.lower()
        if not lower.startswith("anthropic-ratelimit-"):
            continue
        value = headers[name].strip().lower()
        if lower.endswith("-remaining") and value == "0":
            prefixes.append(lower.removesuffix("-remaining"))
        elif lower.endswith("-status") and value in ("rejected", "exceeded"):
            prefixes.append(lower.removesuffix("-status"))
    return prefixes


def _retry_after_s(value: str | None, now: datetime) -> float | None:
    if not value:
        return None
    value = value.strip()
    try:
        return _finite(float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (when - now).total_seconds()


def _reset_s(value: str | None, now: datetime) -> float | None:
    """A reset header: RFC 3339 timestamp or Unix epoch seconds -> seconds from ``now``."""
    if not value:
        return None
    value = value.strip()
    try:
        epoch = _finite(float(value))
        return None if epoch is None else epoch - now.timestamp()
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (when - now).total_seconds()
