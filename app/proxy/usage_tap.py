"""Read token usage out of an Anthropic response while it passes through, without delaying a byte.

Anthropic's stream grammar (https://docs.anthropic.com/en/api/messages-streaming): ``message_start``
carries ``message.usage`` (input and cache tokens), each ``message_delta`` carries cumulative
``usage`` (output tokens, sometimes updated input/cache counts). Only those two and ``error`` carry
anything the proxy records, so the tap splits the bytes into events and reads only their names; it
decodes and JSON-parses the ``data`` of those three alone. An event in Anthropic's own framing (one
``event:`` line, one ``data:`` line) is dispatched on its name without splitting it into lines, and a
``content_block_delta`` (most of a stream, one per token or so) is counted without a parse (issue 16).
Framing follows the SSE spec (https://html.spec.whatwg.org/multipage/server-sent-events.html): events
end at a blank line, lines end at LF, CRLF or CR, ``:`` starts a comment, one space after the field
name's colon is dropped, ``data`` lines are joined with LF.

Nothing Anthropic sends can make the tap raise: an event it reads (``message_start``,
``message_delta``, ``error``) whose ``data`` is not a JSON object (bad JSON, an array, a string,
nested too deep) sets ``malformed``, and the relay ends the stream with an SSE ``error``; usage
counts that are not non-negative finite numbers count as 0.

The relay (``relay.py``) feeds it the bytes of both providers (Bedrock's answer is translated to this
same grammar first), so usage and time to first token are read in one place.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from app.usage.floor import delta_text_chars

USAGE_FIELDS = ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
_EVENTS_WITH_USAGE = frozenset({"message_start", "message_delta", "error"})
_EVENTS_WITH_USAGE_BYTES = frozenset(name.encode() for name in _EVENTS_WITH_USAGE)


def token_count(value: Any) -> int:
    """A usage count -> int tokens; anything but a non-negative finite number (null, a string,
    a bool, ``nan``, a negative count) is 0. Never raises."""
    if type(value) is int:  # the usual case, first (bool is not int here: ``type`` is exact)
        return value if value > 0 else 0
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    if isinstance(value, float):
        if not math.isfinite(value):
            return 0
        value = int(value)
    return max(value, 0)


_NO_USAGE = {name: 0 for name in (*USAGE_FIELDS, "cache_creation_1h_input_tokens")}


def usage_from_message(usage: Any) -> dict[str, int]:
    """Anthropic ``usage`` object -> the four counters plus ``cache_creation_1h_input_tokens``.

    Missing, null or malformed counts are 0 (tokens, see ``token_count``); never raises.
    """
    if not isinstance(usage, dict):
        return dict(_NO_USAGE)
    get = usage.get
    cache_creation = get("cache_creation")
    return {"input_tokens": token_count(get("input_tokens")), "output_tokens": token_count(get("output_tokens")),
            "cache_creation_input_tokens": token_count(get("cache_creation_input_tokens")),
            "cache_read_input_tokens": token_count(get("cache_read_input_tokens")),
            "cache_creation_1h_input_tokens": token_count(cache_creation.get("ephemeral_1h_input_tokens"))
            if isinstance(cache_creation, dict) else 0}


# Anthropic's framing of a delta whose string the output floor counts (app/usage/floor.py: text,
# thinking, input JSON), when that string has no escapes, quotes or control bytes.
_PLAIN_DELTA = re.compile(rb'data: \{"type":"content_block_delta","index":[0-9]+,"delta":\{"type":"'
                          rb'(?:text_delta","text|thinking_delta","thinking|input_json_delta","partial_json)'
                          rb'":"([^"\\\x00-\x1f]*)"\}\}')


def plain_delta_chars(line: bytes) -> int:
    """The characters of a ``content_block_delta``'s string, read straight from its ``data:`` line
    when the line is exactly Anthropic's framing (``{"type":"content_block_delta","index":N,
    "delta":{"type":"text_delta","text":"..."}}``, or thinking / input_json) and the string has no
    escapes and no control bytes: then the string is its UTF-8 bytes, and this equals
    ``floor.delta_text_chars`` of the line. -1 for any other line (the caller parses it): a JSON
    parse per delta was most of the tap's cost per event (issue 16)."""
    match = _PLAIN_DELTA.fullmatch(line)
    return len(match[1].decode("utf-8", "replace")) if match else -1


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


class UsageTap:
    """Feed it the raw SSE bytes as they pass: ``feed(chunk)``. Afterwards ``usage`` holds the
    token counts seen so far, ``stop_reason`` the last stop reason, ``error_type`` an in-stream
    ``error`` event's type, ``complete`` whether ``message_stop`` arrived, ``content_started``
    whether a ``content_block_delta`` event has passed (the time-to-first-token mark), and
    ``malformed`` the name of the first event whose ``data`` was not a JSON object (None while all were).
    Once ``malformed`` is set, ``malformed_at`` is the offset in the last chunk fed where that event
    begins (0 when it began in an earlier chunk), so the events before it can still be relayed;
    nothing after it is read. ``final_usage_seen``: a ``message_delta`` (the final usage frame)
    arrived; ``delta_chars``: characters of text / thinking / tool-input JSON streamed so far (for
    the output floor of a stream cut before its final frame: app/usage/floor.py)."""

    def __init__(self) -> None:
        self._pending = b""  # the bytes of the event not yet ended by a blank line
        self._cr = False  # a CR was seen: lines may end in CRLF or CR (normalized before splitting)
        self.usage: dict[str, int] = usage_from_message(None)
        self.model: str | None = None
        self.stop_reason: str | None = None
        self.error_type: str | None = None
        self.complete = False
        self.content_started = False
        self.malformed: str | None = None
        self.malformed_at = 0
        self.final_usage_seen = False
        self.delta_chars = 0

    def feed(self, chunk: bytes) -> None:
        if self.malformed is not None:
            return
        if self._cr or b"\r" in chunk:
            self._feed_normalized(chunk)
            return
        held = len(self._pending)
        data = self._pending + chunk if held else chunk
        start = 0
        while (end := data.find(b"\n\n", start)) != -1:
            # Anthropic's framing: one ``event: NAME`` line and one ``data: ...`` line. Then NAME is
            # the event's type and the data line its whole data: no line loop (issue 16).
            newline = data.find(b"\n", start, end)
            if (newline != -1 and data.startswith(b"event: ", start) and data.startswith(b"data: ", newline + 1)
                    and data.find(b"\n", newline + 1, end) == -1):
                self._on_framed(data[start + 7:newline], data, newline + 1, end)
            else:
                self._on_block(data[start:end])
            if self.malformed is not None:
                self.malformed_at = max(start - held, 0)
                return
            start = end + 2
        self._pending = data[start:] if start else data

    def _on_framed(self, name: bytes, data: bytes, line_start: int, end: int) -> None:
        """An event in Anthropic's framing: ``name`` from its event line, its ``data: ...`` line is
        ``data[line_start:end]``. The same outcome as ``_on_block`` of the whole event."""
        if name == b"content_block_delta":
            self.content_started = True
            line = data[line_start:end]
            chars = plain_delta_chars(line)
            self.delta_chars += chars if chars >= 0 else delta_text_chars(line[6:].decode("utf-8", "replace"))
        elif name in _EVENTS_WITH_USAGE_BYTES:
            self._on_event(name.decode(), data[line_start + 6:end].decode("utf-8", "replace"))
        elif name == b"message_stop":
            self.complete = True
        # any other event (content_block_start / _stop, ping, ...) carries nothing recorded

    def _feed_normalized(self, chunk: bytes) -> None:
        """CR line ends: rare (Anthropic sends LF), so this path normalizes and does not track
        ``malformed_at`` (0: the chunk holding a malformed event is not relayed)."""
        self._cr = True
        data = self._pending + chunk
        # A CR at the very end may be the first half of a CRLF: keep it for the next chunk.
        tail = b"\r" if data.endswith(b"\r") else b""
        data = (data[:-1] if tail else data).replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        *blocks, rest = data.split(b"\n\n")
        for block in blocks:
            self._on_block(block)
            if self.malformed is not None:
                return
        self._pending = rest + tail

    def _on_block(self, block: bytes) -> None:
        """One event's lines (without the blank line that ended it)."""
        name: bytes | None = None
        data: list[bytes] = []
        for line in block.split(b"\n"):
            if not line or line[0] == 0x3A:  # blank, or a ":" comment
                continue
            field, colon, value = line.partition(b":")
            if colon and value[:1] == b" ":
                value = value[1:]
            if field == b"event":
                name = value
            elif field == b"data":
                data.append(value)
        if name is None and not data:
            return  # nothing to dispatch (comments only)
        text = name.decode("utf-8", "replace") if name else "message"
        if text in _EVENTS_WITH_USAGE:
            self._on_event(text, b"\n".join(data).decode("utf-8", "replace"))
        elif text == "content_block_delta":
            self.content_started = True
            self.delta_chars += delta_text_chars(b"\n".join(data).decode("utf-8", "replace"))
        elif text == "message_stop":
            self.complete = True

    def _on_event(self, name: str, data: str) -> None:
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
            # the Bedrock fallback's stream states its 1h cache writes here (app/bedrock/stream.py)
            if isinstance(delta_usage.get("cache_creation"), dict):
                self.usage["cache_creation_1h_input_tokens"] = usage_from_message(delta_usage)[
                    "cache_creation_1h_input_tokens"]
            stop_reason = _object(payload.get("delta")).get("stop_reason")
            self.stop_reason = stop_reason if isinstance(stop_reason, str) else self.stop_reason
        else:  # error
            error_type = _object(payload.get("error")).get("type")
            self.error_type = error_type if isinstance(error_type, str) and error_type else "api_error"
