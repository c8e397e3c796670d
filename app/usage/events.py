"""The usage event: one per finished request (success or error, either provider, streamed or not).

Token counts follow the Anthropic ``usage`` object
(https://docs.anthropic.com/en/api/messages#response-usage); times are UTC; latencies in ms.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any, Literal

Provider = Literal["anthropic", "bedrock"]
Endpoint = Literal["messages", "count_tokens"]


def new_event_id() -> str:
    """A unique, time-sortable-enough event id (uuid4 hex, 32 chars)."""
    return uuid.uuid4().hex


@dataclass(slots=True)
class UsageEvent:
    """One request's usage. ``cache_creation_1h_input_tokens`` is the 1-hour-TTL part of
    ``cache_creation_input_tokens`` (priced higher); ``cost_usd_micros`` is filled in by the
    recorder from the pricing table (an unknown model at the default tier, ``cost_estimated``);
    ``None`` only for events recorded before that rule or when pricing itself failed."""

    user_id: str | None
    access_key_id: str | None
    provider: Provider
    model: str | None  # the model id the client asked for
    provider_model: str | None = None  # e.g. the Bedrock inference profile id
    endpoint: Endpoint = "messages"
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_creation_1h_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    status: int = 200
    streamed: bool = False
    latency_ms: float = 0.0
    ttft_ms: float | None = None
    fallback_reason: str | None = None
    request_id: str | None = None
    notes: list[str] = field(default_factory=list)  # e.g. ["thinking_stripped"]
    cost_usd_micros: int | None = None
    cost_estimated: bool = False  # priced at the unknown-model default tier (app/usage/pricing.py)
    # Claude Code attribution (app/usage/attribution.py): which session and (sub)agent sent it.
    # Client-chosen labels, never identities: the user is always ``user_id`` (from the key).
    session_id: str | None = None  # x-claude-code-session-id
    agent_id: str | None = None  # x-claude-code-agent-id
    parent_agent_id: str | None = None  # x-claude-code-parent-agent-id (set: a subagent's request)
    request_class: str | None = None  # x-claude-code-request-class (a hint)
    compaction: str | None = None  # x-claude-code-compaction (a hint)
    time: datetime = field(default_factory=lambda: datetime.now(UTC))
    event_id: str = field(default_factory=new_event_id)

    @property
    def total_tokens(self) -> int:
        return (self.input_tokens + self.output_tokens
                + self.cache_creation_input_tokens + self.cache_read_input_tokens)

    def to_document(self) -> dict[str, Any]:
        """The MongoDB document (``_id`` = ``event_id``): every field, ``notes`` copied (a shallow
        copy otherwise; ``dataclasses.asdict`` cost ~10x more on the write path)."""
        doc = {name: getattr(self, name) for name in _FIELD_NAMES}
        doc["notes"] = list(self.notes) if isinstance(self.notes, list) else self.notes
        doc["_id"] = doc.pop("event_id")
        return doc


_FIELD_NAMES = tuple(f.name for f in fields(UsageEvent))
