"""Read token usage out of an Anthropic response while it passes through, without delaying a byte.

Anthropic's stream grammar (https://docs.anthropic.com/en/api/messages-streaming): ``message_start``
carries ``message.usage`` (input and cache tokens), each ``message_delta`` carries cumulative
``usage`` (output tokens, sometimes updated input/cache counts). SSE framing is decoded with
``httpx-sse``'s line and event decoders (pinned in the lock file), fed chunk by chunk.

Nothing Anthropic sends can make the tap raise: an event it reads (``message_start``,
``message_delta``, ``error``) whose ``data`` is not a JSON object (bad JSON, an array, a string,
nested too deep) sets ``malformed``, and the relay ends the stream with an SSE ``error``; usage
counts that are not non-negative finite numbers count as 0.

The relay (``relay.py``) feeds it the bytes of both providers (Bedrock's answer is translated to this
same grammar first), so usage and time to first token are read in one place.
"""

from __future__ import annotations

import codecs
import json
import math
from typing import Any

from httpx_sse._decoders import SSEDecoder, SSELineDecoder

from app.usage.floor import delta_text_chars

USAGE_FIELDS = ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
_EVENTS_WITH_USAGE = frozenset({"message_start", "message_delta", "error"})


def token_count(value: Any) -> int:
    """A usage count -> int tokens; anything but a non-negative finite number (null, a string,
    a bool, ``nan``, a negative count) is 0. Never raises."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    if isinstance(value, float):
        if not math.isfinite(value):
            return 0
        value = int(value)
    return max(value, 0)


def usage_from_message(usage: Any) -> dict[str, int]:
    """Anthropic ``usage`` object -> the four counters plus ``cache_creation_1h_input_tokens``.

    Missing, null or malformed counts are 0 (tokens, see ``token_count``); never raises.
    """
    usage = usage if isinstance(usage, dict) else {}
    out = {name: token_count(usage.get(name)) for name in USAGE_FIELDS}
    cache_creation = usage.get("cache_creation")
    cache_creation = cache_creation if isinstance(cache_creation, dict) else {}
    out["cache_creation_1h_input_tokens"] = token_count(cache_creation.get("ephemeral_1h_input_tokens"))
    return out


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


class UsageTap:
    """Feed it the raw SSE bytes as they pass: ``feed(chunk)``. Afterwards ``usage`` holds the
    token counts seen so far, ``stop_reason`` the last stop reason, ``error_type`` an in-stream
    ``error`` event's type, ``complete`` whether ``message_stop`` arrived, ``content_started``
    whether a ``content_block_delta`` event has passed (the time-to-first-token mark), and
    ``malformed`` the name of the first event whose ``data`` was not a JSON object (None while all were),
    ``final_usage_seen`` whether a ``message_delta`` (the final usage frame) arrived, and
    ``delta_chars`` the characters of text / thinking / tool-input JSON streamed so far (for the
    output floor of a stream cut before its final frame: app/usage/floor.py)."""

    def __init__(self) -> None:
        self._text = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._lines = SSELineDecoder()
        self._events = SSEDecoder()
        self.usage: dict[str, int] = usage_from_message(None)
        self.model: str | None = None
        self.stop_reason: str | None = None
        self.error_type: str | None = None
        self.complete = False
        self.content_started = False
        self.malformed: str | None = None
        self.final_usage_seen = False
        self.delta_chars = 0

    def feed(self, chunk: bytes) -> None:
        for line in self._lines.decode(self._text.decode(chunk)):
            event = self._events.decode(line)
            if event is not None:
                self._on_event(event.event, event.data)

    def _on_event(self, name: str, data: str) -> None:
        if name == "content_block_delta":
            self.content_started = True
            self.delta_chars += delta_text_chars(data)  # only the delta's text length is kept
            return
        if name == "message_stop":
            self.complete = True
            return
        if name not in _EVENTS_WITH_USAGE:
            return  # text deltas etc.: no need to parse their JSON
        try:
            payload = json.loads(data)
        except (ValueError, RecursionError):
            payload = None
        if not isinstance(payload, dict):
            self.malformed = self.malformed or name
            return
        if name == "message_start":
            message = _object(payload.get("message"))
            model = message.get("model")
            self.model = model if isinstance(model, str) else None
            self.usage = usage_from_message(message.get("usage"))
        elif name == "message_delta":
            self.final_usage_seen = True
            delta_usage = _object(payload.get("usage"))
            # message_delta usage is cumulative; it may restate input/cache counts too.
            for field in USAGE_FIELDS:
                if delta_usage.get(field) is not None:
                    self.usage[field] = token_count(delta_usage[field])
            stop_reason = _object(payload.get("delta")).get("stop_reason")
            self.stop_reason = stop_reason if isinstance(stop_reason, str) else self.stop_reason
        else:  # error
            error_type = _object(payload.get("error")).get("type")
            self.error_type = error_type if isinstance(error_type, str) and error_type else "api_error"
