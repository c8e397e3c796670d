"""The output-token floor for an aborted stream (app/usage/floor.py)."""

from __future__ import annotations

import pytest

from app.usage.floor import billed_output_tokens, delta_text_chars, floor_output_tokens


@pytest.mark.parametrize(("chars", "tokens"), [(0, 0), (1, 1), (4, 1), (5, 2), (4000, 1000), (4001, 1001),
                                               (-3, 0), (True, 0), (2.5, 0), (None, 0), ("12", 0)])
def test_floor_is_four_characters_per_token_rounded_up(chars: object, tokens: int) -> None:
    assert floor_output_tokens(chars) == tokens  # type: ignore[arg-type]


def test_the_floor_applies_only_when_the_usage_frame_is_missing() -> None:
    assert billed_output_tokens(None, 4001) == (1001, True)
    assert billed_output_tokens(7, 4001) == (7, False)  # a reported count wins, even when lower
    assert billed_output_tokens(0, 4001) == (0, False)


@pytest.mark.parametrize(("data", "chars"), [
    ('{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello, \\u00e9t\\u00e9"}}', 10),  # "Hello, été"
    ('{"type":"content_block_delta","index":1,"delta":{"type":"thinking_delta","thinking":"hmm"}}', 3),
    ('{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{\\"a\\": 1"}}', 7),  # {"a": 1
    ('{"type":"content_block_delta","index":1,"delta":{"type":"signature_delta","signature":"EqQBCgIYAhIM"}}', 0),
    ("not json", 0), ("[1, 2]", 0), ('{"delta": "x"}', 0),
])
def test_delta_text_chars_counts_what_was_streamed(data: str, chars: int) -> None:
    assert delta_text_chars(data) == chars
