"""Read token usage out of an Anthropic response while it passes through, without delaying a byte.

Anthropic's stream grammar (https://docs.anthropic.com/en/api/messages-streaming): ``message_start``
carries ``message.usage`` (input and cache tokens), each ``message_delta`` carries cumulative
``usage`` (output tokens, sometimes updated input/cache counts). SSE framing is decoded with
``httpx-sse``'s line and event decoders (pinned in the lock file), fed chunk by chunk.
"""

from __future__ import annotations

import codecs
import json
from typing import Any

from httpx_sse._decoders import SSEDecoder, SSELineDecoder

USAGE_FIELDS = ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
_EVENTS_WITH_USAGE = frozenset({"message_start", "message_delta", "error"})


def usage_from_message(usage: dict[str, Any] | None) -> dict[str, int]:
    """Anthropic ``usage`` object -> the four counters plus ``cache_creation_1h_input_tokens``.

    Missing or null counts are 0 (tokens).
    """
    usage = usage or {}
    out = {name: int(usage.get(name) or 0) for name in USAGE_FIELDS}
    cache_creation = usage.get("cache_creation") or {}
    out["cache_creation_1h_input_tokens"] = int(cache_creation.get("ephemeral_1h_input_tokens") or 0)
    return out


class UsageTap:
    """Feed it the raw SSE bytes as they pass: ``feed(chunk)``. Afterwards ``usage`` holds the
    token counts seen so far, ``stop_reason`` the last stop reason, ``error_type`` an in-stream
    ``error`` event's type, and ``complete`` whether ``message_stop`` arrived."""

    def __init__(self) -> None:
        self._text = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._lines = SSELineDecoder()
        self._events = SSEDecoder()
        self.usage: dict[str, int] = usage_from_message(None)
        self.model: str | None = None
        self.stop_reason: str | None = None
        self.error_type: str | None = None
        self.complete = False
        self.first_event_seen = False

    def feed(self, chunk: bytes) -> None:
        for line in self._lines.decode(self._text.decode(chunk)):
            event = self._events.decode(line)
            if event is not None:
                self._on_event(event.event, event.data)

    def _on_event(self, name: str, data: str) -> None:
        self.first_event_seen = True
        if name == "message_stop":
            self.complete = True
            return
        if name not in _EVENTS_WITH_USAGE:
            return  # text deltas etc.: no need to parse their JSON
        try:
            payload = json.loads(data)
        except ValueError:
            return
        if name == "message_start":
            message = payload.get("message") or {}
            self.model = message.get("model")
            self.usage = usage_from_message(message.get("usage"))
        elif name == "message_delta":
            delta_usage = payload.get("usage") or {}
            # message_delta usage is cumulative; it may restate input/cache counts too.
            for field in USAGE_FIELDS:
                if delta_usage.get(field) is not None:
                    self.usage[field] = int(delta_usage[field])
            self.stop_reason = (payload.get("delta") or {}).get("stop_reason") or self.stop_reason
        else:  # error
            self.error_type = (payload.get("error") or {}).get("type") or "api_error"
