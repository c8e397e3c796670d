"""A floor for the output tokens of a stream that ended without its final usage frame (pure).

Anthropic reports a stream's output tokens in its last ``message_delta`` (Bedrock in ``metadata``).
When the client goes away or the upstream connection drops before that frame, the relay has only
what it streamed: the text (and thinking, and tool-input JSON) deltas. Anthropic bills what it
generated, so recording 0 output tokens would let an aborted request spend for free. This module
turns the streamed size into a floor at about 4 characters per token ("a token is approximately
4 characters" for English text: https://docs.anthropic.com/en/docs/about-claude/pricing FAQ and
the token-counting guide). It is a floor, not an estimate of the truth: code and non-English text
have more tokens per character, so the real count is usually higher.

Use it only when the frame is missing: a reported ``output_tokens`` is always the number to bill.
"""

from __future__ import annotations

import json
import math

CHARS_PER_TOKEN = 4
FLOOR_NOTE = "output_tokens_floor"  # the note on a usage event billed with this floor
_DELTA_TEXT_FIELDS = ("text", "thinking", "partial_json")  # text_delta, thinking_delta, input_json_delta


def floor_output_tokens(streamed_text_chars: int) -> int:
    """Characters of streamed delta text (text, thinking, partial tool JSON; Python ``len``) ->
    the fewest output tokens that could have produced them: ``ceil(chars / 4)``. Negative or
    non-integer input counts as 0 characters (never raises)."""
    if isinstance(streamed_text_chars, bool) or not isinstance(streamed_text_chars, int) or streamed_text_chars <= 0:
        return 0
    return math.ceil(streamed_text_chars / CHARS_PER_TOKEN)


def billed_output_tokens(reported: int | None, streamed_text_chars: int) -> tuple[int, bool]:
    """``(output tokens to record, floored)``: the reported count when the final usage frame came
    (``reported`` not None, even if 0), else ``floor_output_tokens(streamed_text_chars)`` with
    ``floored=True`` (add FLOOR_NOTE to the event's notes)."""
    if reported is not None:
        return reported, False
    return floor_output_tokens(streamed_text_chars), True


def delta_text_chars(data: str) -> int:
    """One ``content_block_delta`` event's ``data`` (JSON text) -> the characters it streamed:
    ``delta.text`` (text_delta), ``delta.thinking`` (thinking_delta) or ``delta.partial_json``
    (input_json_delta); 0 for a signature delta, bad JSON or any other shape (never raises).
    Source: https://docs.anthropic.com/en/docs/build-with-claude/streaming (delta types)."""
    try:
        payload = json.loads(data)
    except (ValueError, RecursionError):
        return 0
    delta = payload.get("delta") if isinstance(payload, dict) else None
    if not isinstance(delta, dict):
        return 0
    return sum(len(v) for k in _DELTA_TEXT_FIELDS if isinstance(v := delta.get(k), str))
