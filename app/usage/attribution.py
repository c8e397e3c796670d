"""Claude Code's session and subagent headers -> usage-event fields (pure: no I/O).

Claude Code sends, on each Messages request, ``x-claude-code-session-id`` (one interactive or
headless session), ``x-claude-code-agent-id`` and ``x-claude-code-parent-agent-id`` (a subagent's
requests carry its own id and its parent's), and hints: ``x-claude-code-request-class`` and
``x-claude-code-compaction``. They are client-chosen labels: they group a user's spend, they never
identify a user (the user is always the access key's owner, ``UsageEvent.user_id``), and they can
be anything, so each value is bounded and cleaned here before it reaches the store.

Rules: the first value of each header; surrounding whitespace trimmed; only printable ASCII
except space and ``"'<>\\`` kept (others dropped, so ids cannot carry markup or control
characters into logs, CSV or HTML); cut at the field's cap (ATTRIBUTION_HEADERS); empty -> absent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Literal, TypedDict

AttributionField = Literal["session_id", "agent_id", "parent_agent_id", "request_class", "compaction"]


class Attribution(TypedDict, total=False):
    """The UsageEvent attribution fields present, each a cleaned, bounded label."""

    session_id: str
    agent_id: str
    parent_agent_id: str
    request_class: str
    compaction: str


ATTRIBUTION_HEADERS: dict[str, tuple[AttributionField, int]] = {
    "x-claude-code-session-id": ("session_id", 128),
    "x-claude-code-agent-id": ("agent_id", 128),
    "x-claude-code-parent-agent-id": ("parent_agent_id", 128),
    "x-claude-code-request-class": ("request_class", 64),
    "x-claude-code-compaction": ("compaction", 16),
}
"""Header -> (UsageEvent field, cap in characters)."""

_DROPPED = frozenset(" \"'<>\\`")
_NOT_KEPT = re.compile("[^!-~]|[" + re.escape("".join(sorted(_DROPPED))) + "]")
_HEADER_PREFIX = b"x-claude-code-"
_BY_RAW_NAME = {name.encode(): spec for name, spec in ATTRIBUTION_HEADERS.items()}


def clean_label(value: object, cap: int) -> str | None:
    """A header value as a bounded label, or None when nothing usable is left."""
    if not isinstance(value, str):
        return None
    return _NOT_KEPT.sub("", value.strip()[: cap * 4])[:cap] or None


def attribution_from_headers(headers: Mapping[str, str]) -> Attribution:
    """Request headers (any mapping; Starlette's ``Headers`` or a plain dict, any case) ->
    ``{UsageEvent field: value}`` for the attribution headers present with a usable value, e.g.
    ``{"session_id": "3f2a...", "agent_id": "a1", "parent_agent_id": "main"}``. Never raises."""
    raw: list[tuple[bytes, bytes]] | None = getattr(headers, "raw", None)
    if raw is not None:  # Starlette's Headers: one pass over the lines (names lower-case) instead of a scan per header
        return _from_raw(raw)
    lowered = {k.lower(): v for k, v in headers.items()}
    out: Attribution = {}
    for header, (field, cap) in ATTRIBUTION_HEADERS.items():
        value = clean_label(lowered.get(header), cap)
        if value is not None:
            out[field] = value
    return out


def _from_raw(raw: list[tuple[bytes, bytes]]) -> Attribution:
    out: Attribution = {}
    seen: set[bytes] = set()
    for name, value in raw:
        if name.startswith(_HEADER_PREFIX) and name not in seen and (spec := _BY_RAW_NAME.get(name)) is not None:
            seen.add(name)  # the first value of each header
            field, cap = spec
            label = clean_label(value.decode("latin-1"), cap)
            if label is not None:
                out[field] = label
    return out


def is_subagent(event_fields: Mapping[str, object]) -> bool:
    """True for a subagent's request: it names a parent agent. A main agent's request has no parent
    (whether or not it sends its own agent id)."""
    return bool(event_fields.get("parent_agent_id"))
