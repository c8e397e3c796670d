"""The quota reservation of one request: an upper bound for ordinary requests, priced conservatively."""

from __future__ import annotations

import base64
import json
import os
import struct
from typing import Any

from app.usage.estimate import DEFAULT_MAX_TOKENS, RESERVATION_PRICE, estimate_request, reservation_cost
from app.usage.pricing import PriceTable


def body(params: dict[str, Any]) -> tuple[bytes, dict[str, Any]]:
    return json.dumps(params).encode(), params


def png(width: int, height: int) -> str:
    header = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + struct.pack(">II", width, height)
    return base64.b64encode(header + b"\x08\x02\x00\x00\x00" + os.urandom(90_000)).decode()  # a 120 KB body


def test_text_is_body_bytes_over_three_plus_max_tokens() -> None:
    raw, params = body({"model": "claude-sonnet-4-5", "max_tokens": 1000,
                        "messages": [{"role": "user", "content": "x" * 3000}]})
    estimate = estimate_request(raw, params, PriceTable())
    assert estimate.input_tokens == -(-len(raw) // 3) and estimate.output_tokens == 1000
    # Sonnet 4.5: input at the 1-hour cache-write rate ($6), output $15, x1.1, in micro-USD.
    assert estimate.cost_usd_micros == -(-(estimate.input_tokens * 6 + 1000 * 15) * 11 // 10)


def test_tools_add_the_tool_use_system_prompt() -> None:
    raw, params = body({"model": "m", "max_tokens": 1, "messages": [], "tools": [{"name": "t"}]})
    assert estimate_request(raw, params, None).input_tokens == -(-len(raw) // 3) + 500


def test_an_image_counts_its_pixels_not_its_base64_size() -> None:
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": png(1000, 1000)}}
    raw, params = body({"model": "claude-sonnet-4-5", "max_tokens": 10,
                        "messages": [{"role": "user", "content": [image]}]})
    estimate = estimate_request(raw, params, PriceTable())
    assert 1334 <= estimate.input_tokens < 2000 < len(raw) // 3  # ceil(1000 * 1000 / 750) + overheads


def test_a_missing_max_tokens_and_an_unknown_model_reserve_at_the_tier_it_is_billed_at() -> None:
    raw, params = body({"model": "claude-next", "messages": []})
    table = PriceTable()
    estimate = estimate_request(raw, params, table)
    assert estimate.output_tokens == DEFAULT_MAX_TOKENS
    assert estimate.cost_usd_micros == reservation_cost(table.unknown_price, estimate.input_tokens, DEFAULT_MAX_TOKENS)
    # Without a table: the dearest list price.
    bare = estimate_request(raw, params, None)
    assert bare.cost_usd_micros == reservation_cost(RESERVATION_PRICE, bare.input_tokens, DEFAULT_MAX_TOKENS)


def test_a_long_prompt_is_priced_at_the_long_context_tier() -> None:
    price = PriceTable().price_for("anthropic", "claude-sonnet-4-5")
    assert price is not None and price.long_context is not None
    assert reservation_cost(price, 300_000, 0) == reservation_cost(price.long_context, 300_000, 0)
    assert reservation_cost(price, 300_000, 0) > reservation_cost(price, 199_000, 0) * 300 / 199
