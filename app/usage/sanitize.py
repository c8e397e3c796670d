"""Make a UsageEvent storable, whatever the client or the upstream sent (pure: no I/O).

A usage event is built from client input (``model``, ``notes``) and upstream answers (token
counts, request ids). Any of it can be something BSON cannot store or the buckets must not add:
a lone UTF-16 surrogate (JSON ``"claude-\\ud800"`` decodes to one; UTF-8 cannot encode it), an
integer past 64 bits (``int(1e308)``), a float, NaN, a negative count. ``sanitize_event`` fixes
every field in place and says which ones it changed; it never raises.

Rules (caps are in characters of the cleaned string; the worst case is 4 UTF-8 bytes each):

- strings: lone surrogates (U+D800..U+DFFF) become U+FFFD; a non-string becomes its ``str()``
  (cleaned); then cut at the field's cap (``STRING_CAPS``: ids and the model 256, provider and
  endpoint 32, fallback reason 128, request id 256, event id 64); an empty event id gets a new one.
- ``notes``: at most ``MAX_NOTES`` (16) strings of at most ``NOTE_MAX_CHARS`` (64).
- token counts: integers in ``[0, MAX_TOKENS]`` (10**9 per counter per request; the largest
  context window is about 10**6). Floats are truncated, NaN and non-numbers become 0, +inf becomes
  the cap, a bool counts as 0/1, a numeric string is parsed.
- ``status``: integer in ``[0, 999]`` (0 when unreadable).
- ``latency_ms``: finite float in ``[0, MAX_LATENCY_MS]`` (7 days); ``ttft_ms`` likewise or None.
- ``cost_usd_micros``: None or an integer in ``[0, MAX_COST_USD_MICROS]`` (10**13 micro-USD =
  $10 million: above any request priced from capped counts); NaN becomes None.
- ``time``: a timezone-aware datetime (naive is taken as UTC; anything else becomes now).
- ``streamed``, ``cost_estimated``: bools.
- attribution (``session_id``, ``agent_id``, ``parent_agent_id``: 128; ``request_class``: 64;
  ``compaction``: 16): cut like the other strings (app/usage/attribution.py also drops odd characters).

Sums stay inside BSON's 64-bit integers: a bucket would need 9 * 10**9 maximal events to overflow.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any

from app.records.events import UsageEvent, new_event_id

MAX_TOKENS = 10**9
MAX_LATENCY_MS = 7 * 24 * 3600 * 1000.0
MAX_COST_USD_MICROS = 10**13
MAX_STATUS = 999
MAX_NOTES = 16
NOTE_MAX_CHARS = 64
STRING_CAPS: dict[str, int] = {
    "user_id": 256, "access_key_id": 256, "provider": 32, "model": 256, "provider_model": 256,
    "endpoint": 32, "fallback_reason": 128, "request_id": 256, "event_id": 64,
    # Claude Code attribution (app/usage/attribution.py bounds them first; this is the backstop)
    "session_id": 128, "agent_id": 128, "parent_agent_id": 128, "request_class": 64, "compaction": 16,
}
TOKEN_FIELDS = ("input_tokens", "output_tokens", "cache_creation_input_tokens",
                "cache_creation_1h_input_tokens", "cache_read_input_tokens")
_SURROGATE = re.compile("[\ud800-\udfff]")
_NOT_NONE = frozenset({"provider", "endpoint", "event_id"})


def clean_text(value: object, cap: int) -> str:
    """``value`` as a string UTF-8 can encode (lone surrogates -> U+FFFD), at most ``cap`` chars."""
    if type(value) is str and value.isascii():  # the usual case: no surrogate possible
        return value[:cap]
    if not isinstance(value, str):
        try:
            value = str(value)
        except Exception:  # noqa: BLE001 - a hostile __str__ must not break the request path
            value = f"<{type(value).__name__}>"
    if _SURROGATE.search(value):
        value = _SURROGATE.sub("\ufffd", value)
    return value[:cap]


def clean_count(value: object, cap: int = MAX_TOKENS) -> int:
    """A count as an integer in ``[0, cap]`` (see the module docstring for odd inputs)."""
    if type(value) is int:
        return value if 0 <= value <= cap else (0 if value < 0 else cap)
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return 0
    if isinstance(value, int):  # int subclasses
        return clean_count(int(value), cap)
    if isinstance(value, float):
        if math.isnan(value):
            return 0
        if value <= 0:
            return 0
        return cap if value >= cap else int(value)
    try:
        return clean_count(float(value), cap)  # type: ignore[arg-type]  # Decimal, numpy...
    except Exception:  # noqa: BLE001
        return 0


def clean_ms(value: object) -> float | None:
    """A duration in ms as a finite float in ``[0, MAX_LATENCY_MS]``; None if unreadable or NaN."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except Exception:  # noqa: BLE001
        return None
    if math.isnan(number):
        return None
    return min(max(number, 0.0), MAX_LATENCY_MS)


def clean_cost(value: object) -> int | None:
    """``cost_usd_micros``: None stays None (unknown price); else an integer in range; NaN -> None."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return clean_count(value, MAX_COST_USD_MICROS)


def clean_time(value: object, now: datetime | None = None) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return now or datetime.now(UTC)


def _clean_notes(notes: object) -> list[str]:
    if not isinstance(notes, (list, tuple)):
        return [] if notes is None else [clean_text(notes, NOTE_MAX_CHARS)]
    return [clean_text(note, NOTE_MAX_CHARS) for note in notes[:MAX_NOTES]]


def cleaned_fields(event: UsageEvent) -> dict[str, Any]:
    """The fields of ``event`` that must change, with their clean values (``{}``: already clean).
    Pure: ``event`` is not modified. Never raises."""
    changes: dict[str, Any] = {}
    for name, cap in STRING_CAPS.items():
        value = getattr(event, name)
        if value is None and name not in _NOT_NONE:
            continue
        clean = clean_text(value, cap) if value is not None else ""
        if name == "event_id" and not clean:
            clean = new_event_id()
        if clean != value or type(value) is not str:
            changes[name] = clean
    for name in TOKEN_FIELDS:
        value = getattr(event, name)
        count = clean_count(value)
        if count != value or type(value) is not int:
            changes[name] = count
    status = clean_count(event.status, MAX_STATUS)
    if status != event.status or type(event.status) is not int:
        changes["status"] = status
    if type(event.streamed) is not bool:
        changes["streamed"] = bool(event.streamed)
    if type(event.cost_estimated) is not bool:
        changes["cost_estimated"] = bool(event.cost_estimated)
    latency = clean_ms(event.latency_ms)
    latency = 0.0 if latency is None else latency
    if type(event.latency_ms) is not float or latency != event.latency_ms:
        changes["latency_ms"] = latency
    if event.ttft_ms is not None:
        ttft = clean_ms(event.ttft_ms)
        if type(event.ttft_ms) is not float or ttft != event.ttft_ms:
            changes["ttft_ms"] = ttft
    cost = clean_cost(event.cost_usd_micros)
    if cost != event.cost_usd_micros or (cost is not None and type(event.cost_usd_micros) is not int):
        changes["cost_usd_micros"] = cost
    notes = _clean_notes(event.notes)
    if notes != event.notes or type(event.notes) is not list:
        changes["notes"] = notes
    time = clean_time(event.time)
    if time is not event.time:
        changes["time"] = time
    return changes


def sanitize_event(event: UsageEvent) -> tuple[str, ...]:
    """Clean ``event`` in place (see the module docstring); returns the names of the fields changed.
    Never raises."""
    changes = cleaned_fields(event)
    for name, value in changes.items():
        setattr(event, name, value)
    return tuple(changes)
