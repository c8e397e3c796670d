"""What a Messages request may cost at most, before it is sent: the quota reservation (pure).

Input tokens: ``ceil(body bytes / 3)`` (Claude averages ~3.5-4 bytes per token on English and code;
the JSON keys and punctuation of the body add more bytes than the request overhead Anthropic adds),
plus the tool-use system prompt when ``tools`` are present. A body with base64 media (images, PDFs)
is estimated block by block with app/bedrock/tokens.py ``estimate_input_tokens`` instead, because
base64 bytes say nothing about an image's tokens (a 300 KB screenshot is ~1,600 tokens, not
100,000). Both are deliberate over-estimates for ordinary requests.

Output tokens: ``max_tokens`` (the API never returns more; ``thinking.budget_tokens`` is part of
it). A missing or invalid ``max_tokens`` (the API will answer 400) reserves DEFAULT_MAX_TOKENS.

Cost: input at the highest of the model's input and cache-write rates (the prompt may be written to
the 1-hour cache at 2x input), output at the output rate, the long-context tier when the prompt
estimate passes 200K tokens, times Bedrock's regional premium (1.1; a fallback may be served there).
A model with no price is reserved at the table's ``unknown_price`` (default $5 / $25, the tier it
will be billed at: app/usage/pricing.py), so a reservation and its settlement agree; without a
table (``pricing=None``) at RESERVATION_PRICE, the highest list price.

Where the estimate can be low (the bound in docs/usage.md): server tools (web search/fetch results
are billed as input), text that tokenizes at more than one token per 3 bytes (long hex or random
strings), and a model priced higher than RESERVATION_PRICE.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from typing import Any

from app.bedrock.tokens import BYTES_PER_TOKEN, TOOLS_PREAMBLE, estimate_input_tokens
from app.usage.events import UsageEvent
from app.usage.pricing import LONG_CONTEXT_THRESHOLD_TOKENS, REGIONAL_PREMIUM, Price, PriceTable

RESERVATION_PRICE = Price.of(15, 75)  # USD / MTok; Opus 4.1 / Opus 3, the dearest list price
DEFAULT_MAX_TOKENS = 4096
_MEDIA_MARKER = b'"base64"'


@dataclass(frozen=True, slots=True)
class Estimate:
    """Upper-bound guess for one request: tokens (input + output) and cost in micro-USD."""

    input_tokens: int
    output_tokens: int
    cost_usd_micros: int

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens


def estimate_request(body: bytes, params: dict[str, Any], pricing: PriceTable | None) -> Estimate:
    """``body`` (the exact bytes), ``params`` (its parsed JSON object) -> the reservation."""
    if _MEDIA_MARKER in body:
        input_tokens = estimate_input_tokens(params)
    else:
        input_tokens = math.ceil(len(body) / BYTES_PER_TOKEN) + (TOOLS_PREAMBLE if params.get("tools") else 0)
    max_tokens = params.get("max_tokens")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 0:
        max_tokens = DEFAULT_MAX_TOKENS
    model = params.get("model")
    name = model if isinstance(model, str) else None
    price = pricing.price_or_default("anthropic", name) if pricing else RESERVATION_PRICE
    return Estimate(input_tokens, max_tokens, reservation_cost(price, input_tokens, max_tokens))


def reservation_cost(price: Price, input_tokens: int, output_tokens: int) -> int:
    """Micro-USD, rounded up (see the module docstring for the rates used)."""
    if price.long_context is not None and input_tokens > LONG_CONTEXT_THRESHOLD_TOKENS:
        price = price.long_context
    input_rate = max(price.input, price.cache_write_5m, price.cache_write_1h, price.cache_read)
    micros = (input_tokens * input_rate + output_tokens * price.output) * REGIONAL_PREMIUM
    return int(micros.to_integral_value(rounding=ROUND_CEILING))


def unpriced_cost_usd_micros(event: UsageEvent) -> int:
    """The cost the quotas charge for an event with no price (``cost_usd_micros`` None: recorded
    before unknown models were billed at the default tier, or pricing failed): its tokens at
    RESERVATION_PRICE, so it never spends for free."""
    p = RESERVATION_PRICE
    micros = ((event.input_tokens * p.input) + (event.output_tokens * p.output)
              + (event.cache_creation_input_tokens * p.cache_write_1h) + (event.cache_read_input_tokens * p.cache_read))
    return int(Decimal(micros).to_integral_value(rounding=ROUND_CEILING))
