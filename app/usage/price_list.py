"""The shipped price list (pure data): Price, every current Claude model's list price and the
source of each (SOURCES explains the ``source`` values). Rates are USD per million tokens.
Pricing rules, precedence and canonical model names: app/usage/pricing.py.

Sources: Anthropic's pricing page, https://platform.claude.com/docs/en/about-claude/pricing
(prompt caching multipliers: 5-minute cache write = 1.25x base input, 1-hour = 2x, read = 0.1x).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal

RATE_FIELDS = ("input", "output", "cache_write_5m", "cache_write_1h", "cache_read")
CACHE_WRITE_5M_MULTIPLIER = Decimal("1.25")
CACHE_WRITE_1H_MULTIPLIER = Decimal("2")
CACHE_READ_MULTIPLIER = Decimal("0.1")


@dataclass(frozen=True, slots=True)
class Price:
    """USD per million tokens for each kind of token. ``long_context`` (if any) applies to the whole
    request when its prompt (input + cache write + cache read tokens) exceeds 200,000 tokens."""

    input: Decimal
    output: Decimal
    cache_write_5m: Decimal
    cache_write_1h: Decimal
    cache_read: Decimal
    long_context: Price | None = None

    @classmethod
    def of(cls, input: str | float, output: str | float, *, cache_write_5m: str | float | None = None,
           cache_write_1h: str | float | None = None, cache_read: str | float | None = None) -> Price:
        """A price from input/output rates; cache rates default to Anthropic's multipliers of input."""
        base = Decimal(str(input))
        return cls(input=base, output=Decimal(str(output)),
                   cache_write_5m=_rate(cache_write_5m, base * CACHE_WRITE_5M_MULTIPLIER),
                   cache_write_1h=_rate(cache_write_1h, base * CACHE_WRITE_1H_MULTIPLIER),
                   cache_read=_rate(cache_read, base * CACHE_READ_MULTIPLIER))

    def scaled(self, factor: Decimal) -> Price:
        return Price(**{f: getattr(self, f) * factor for f in RATE_FIELDS},
                     long_context=self.long_context.scaled(factor) if self.long_context else None)

    def rates(self) -> dict[str, str]:
        """``{rate name: "USD / MTok"}`` as strings (JSON-safe, exact)."""
        return {f: plain_rate(getattr(self, f)) for f in RATE_FIELDS}


def _rate(value: str | float | None, default: Decimal) -> Decimal:
    return default if value is None else Decimal(str(value))


def plain_rate(value: Decimal) -> str:
    """A rate as plain decimal text without exponent or trailing zeros: Decimal("6.250") -> "6.25"."""
    text = format(value.normalize(), "f")
    return text


SOURCES: dict[str, str] = {
    "anthropic-page": "Anthropic pricing page (platform.claude.com/docs/en/about-claude/pricing), read for this table",
    "anthropic-published": "Anthropic's list price as quoted by several independent price lists; "
                           "not read on Anthropic's page for this table",
    "derived-tier": "derived, not verified: the family's current tier price (set an override once published)",
    "settings": "PROXY_PRICING_OVERRIDES",
    "admin": "admin override (/admin/pricing or the dashboard)",
    "default": "no price known: the conservative default tier (PROXY_UNKNOWN_MODEL_*_USD_PER_MTOK)",
}
"""What each ``source`` value means."""

# Sonnet 4 / 4.5 with the 1M-context beta: prompts over 200K tokens are billed at 2x input and
# 1.5x output (cache rates follow input) per the pricing page's "Long context pricing".
_SONNET_LONG = Price.of(6, "22.50")

PRICES: dict[str, Price] = {
    # Opus 5.5 / Haiku 5.5: no price we could verify. Third-party lists show lower figures
    # (Opus 5.5 $4/$20, Haiku 5.5 $0.10/$0.50); we bill the family tier until an admin sets one.
    "claude-opus-5-5": Price.of(5, 25),
    "claude-sonnet-5-5": Price.of(2, 10),
    "claude-haiku-5-5": Price.of(1, 5),
    "claude-opus-5": Price.of(5, 25),
    "claude-sonnet-5": Price.of(2, 10),
    "claude-opus-4-8": Price.of(5, 25),
    "claude-opus-4-7": Price.of(5, 25),
    "claude-opus-4-6": Price.of(5, 25),
    "claude-opus-4-5": Price.of(5, 25),
    "claude-opus-4-1": Price.of(15, 75),
    "claude-opus-4": Price.of(15, 75),
    "claude-sonnet-4-6": Price.of(3, 15),
    "claude-sonnet-4-5": replace(Price.of(3, 15), long_context=_SONNET_LONG),
    "claude-sonnet-4": replace(Price.of(3, 15), long_context=_SONNET_LONG),
    "claude-3-7-sonnet": Price.of(3, 15),
    "claude-3-5-sonnet": Price.of(3, 15),
    "claude-haiku-4-5": Price.of(1, 5),
    "claude-3-5-haiku": Price.of("0.80", 4),
    "claude-3-opus": Price.of(15, 75),
    # Haiku 3's listed cache rates are not the usual multiples of its input rate.
    "claude-3-haiku": Price.of("0.25", "1.25", cache_write_5m="0.30", cache_write_1h="0.50", cache_read="0.03"),
}
"""Canonical model name -> price, Anthropic API list prices (USD / MTok)."""

PRICE_SOURCES: dict[str, str] = {
    "claude-opus-5-5": "derived-tier", "claude-sonnet-5-5": "anthropic-published", "claude-haiku-5-5": "derived-tier",
    "claude-opus-5": "anthropic-published", "claude-sonnet-5": "anthropic-published",
    "claude-opus-4-8": "anthropic-published", "claude-opus-4-7": "anthropic-published",
    "claude-opus-4-6": "anthropic-published", "claude-opus-4-5": "anthropic-published",
    "claude-opus-4-1": "anthropic-page", "claude-opus-4": "anthropic-page",
    "claude-sonnet-4-6": "anthropic-published", "claude-sonnet-4-5": "anthropic-published",
    "claude-sonnet-4": "anthropic-page", "claude-3-7-sonnet": "anthropic-page", "claude-3-5-sonnet": "anthropic-page",
    "claude-haiku-4-5": "anthropic-published", "claude-3-5-haiku": "anthropic-page", "claude-3-opus": "anthropic-page",
    "claude-3-haiku": "anthropic-page",
}
"""Canonical model name -> a SOURCES key."""

DEFAULT_UNKNOWN_PRICE = Price.of(5, 25)
