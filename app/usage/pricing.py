"""Prices per model and provider, and the cost of one usage event (pure: no I/O).

Rates are USD per million tokens (MTok), so ``tokens x rate`` is already micro-USD: a request's
cost in integer micro-USD is ``round(sum(tokens_i x rate_i))`` (half-even, once per request).

Source: Anthropic's pricing page, https://platform.claude.com/docs/en/about-claude/pricing
("Model pricing"; prompt caching multipliers: 5-minute cache write = 1.25x base input, 1-hour
cache write = 2x, cache read = 0.1x). Bedrock lists these models at the same per-token prices,
which is what its *global* cross-Region inference profiles (``global.``) charge; for the Claude
4.5 generation and later, geographic profiles (``us.``, ``eu.``, ``apac.``...) and in-Region ids
cost about 10% more (AWS: "Global cross-Region inference", bedrock/latest/userguide/
global-cross-region-inference.html), applied here as REGIONAL_PREMIUM.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_EVEN, Decimal
from functools import lru_cache

from app.records.events import UsageEvent

RATE_FIELDS = ("input", "output", "cache_write_5m", "cache_write_1h", "cache_read")
CACHE_WRITE_5M_MULTIPLIER = Decimal("1.25")
CACHE_WRITE_1H_MULTIPLIER = Decimal("2")
CACHE_READ_MULTIPLIER = Decimal("0.1")
REGIONAL_PREMIUM = Decimal("1.1")
LONG_CONTEXT_THRESHOLD_TOKENS = 200_000


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
        return Price(*(getattr(self, f) * factor for f in RATE_FIELDS),
                     long_context=self.long_context.scaled(factor) if self.long_context else None)


def _rate(value: str | float | None, default: Decimal) -> Decimal:
    return default if value is None else Decimal(str(value))


# Sonnet 4 / 4.5 with the 1M-context beta: prompts over 200K tokens are billed at 2x input and
# 1.5x output (cache rates follow input) per the pricing page's "Long context pricing".
_SONNET_LONG = Price.of(6, "22.50")

PRICES: dict[str, Price] = {
    "claude-opus-5": Price.of(5, 25),
    "claude-opus-4-8": Price.of(5, 25),
    "claude-opus-4-7": Price.of(5, 25),
    "claude-opus-4-6": Price.of(5, 25),
    "claude-opus-4-5": Price.of(5, 25),
    "claude-opus-4-1": Price.of(15, 75),
    "claude-opus-4": Price.of(15, 75),
    "claude-sonnet-5": Price.of(2, 10),
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

ALIASES = {"claude-opus-4-0": "claude-opus-4", "claude-sonnet-4-0": "claude-sonnet-4"}

REGIONAL_PREMIUM_MODELS = frozenset({
    "claude-opus-5", "claude-opus-4-8", "claude-opus-4-7", "claude-opus-4-6", "claude-opus-4-5",
    "claude-sonnet-5", "claude-sonnet-4-6", "claude-sonnet-4-5", "claude-haiku-4-5"})

_BEDROCK_GEO = re.compile(r"^(?:global|us|us-gov|eu|apac|jp|au|ca)\.")
_SUFFIXES = (re.compile(r"\[[0-9a-z]+\]$"), re.compile(r"-v\d+(?::\d+)?$"), re.compile(r"-\d{8}$"),
             re.compile(r"-latest$"))


@lru_cache(maxsize=4096)  # a handful of ids in practice; bounded because clients choose them
def canonical_model(model_id: str | None) -> str | None:
    """A model id as the Anthropic API, Bedrock or Claude Code spells it -> the PRICES key form.

    ``claude-sonnet-4-5-20250929``, ``us.anthropic.claude-sonnet-4-5-20250929-v1:0``,
    ``arn:aws:bedrock:...:inference-profile/global.anthropic.claude-sonnet-4-5-20250929-v1:0`` and
    ``claude-sonnet-4-5[1m]`` all become ``claude-sonnet-4-5``. None stays None.
    """
    if not model_id:
        return None
    name = model_id.strip().lower().rsplit("/", 1)[-1]
    name = _BEDROCK_GEO.sub("", name)
    name = name.removeprefix("anthropic.")
    for suffix in _SUFFIXES:
        name = suffix.sub("", name)
    return ALIASES.get(name, name)


_BEDROCK_REGIONAL = re.compile(r"^(?:(?:us|us-gov|eu|apac|jp|au|ca)\.)?anthropic\.")


def is_regional_bedrock_id(bedrock_id: str) -> bool:
    """True for a geographic cross-Region profile (``us.anthropic...``) or an in-Region model id
    (``anthropic...``); False for ``global.`` profiles and ids of unknown form (no premium assumed)."""
    return bool(_BEDROCK_REGIONAL.match(bedrock_id.strip().lower().rsplit("/", 1)[-1]))


class PriceTable:
    """PRICES plus overrides; ``cost_usd_micros(event)`` prices one event.

    ``overrides`` (``settings.pricing_overrides``) maps a model (any spelling canonical_model
    accepts), optionally prefixed ``anthropic:`` or ``bedrock:`` for one provider only, to rates in
    USD / MTok: ``{"input", "output", "cache_write_5m", "cache_write_1h", "cache_read"}``. Missing
    rates come from the shipped price (or, for a new model, from input x the cache multipliers;
    ``input`` and ``output`` are then required). An overridden Bedrock price is used as is (no
    regional premium). Raises ValueError for an unknown rate name, a negative or missing rate.
    """

    def __init__(self, overrides: Mapping[str, Mapping[str, float]] | None = None) -> None:
        self._prices: dict[tuple[str | None, str], Price] = {(None, m): p for m, p in PRICES.items()}
        self._overridden: set[tuple[str | None, str]] = set()
        for raw_key, rates in (overrides or {}).items():
            provider: str | None = None
            model = raw_key
            if raw_key.startswith(("anthropic:", "bedrock:")):
                provider, _, model = raw_key.partition(":")
            name = canonical_model(model)
            if not name:
                raise ValueError(f"pricing_overrides: empty model name in {raw_key!r}")
            unknown = set(rates) - set(RATE_FIELDS)
            if unknown:
                raise ValueError(f"pricing_overrides[{raw_key!r}]: unknown rate(s) {sorted(unknown)}; "
                                 f"expected {', '.join(RATE_FIELDS)} (USD per million tokens)")
            if any(float(v) < 0 for v in rates.values()):
                raise ValueError(f"pricing_overrides[{raw_key!r}]: rates must be >= 0")
            base = self._prices.get((provider, name)) or self._prices.get((None, name))
            if base is None:
                if "input" not in rates or "output" not in rates:
                    raise ValueError(f"pricing_overrides[{raw_key!r}]: {name!r} has no shipped price, "
                                     "so 'input' and 'output' are required")
                base = Price.of(rates["input"], rates["output"])
            # A new input or output rate makes the shipped long-context tier meaningless.
            keep_long = "input" not in rates and "output" not in rates
            price = Price(*(Decimal(str(rates[f])) if f in rates else getattr(base, f) for f in RATE_FIELDS),
                          long_context=base.long_context if keep_long else None)
            self._prices[(provider, name)] = price
            self._overridden.add((provider, name))

    def price_for(self, provider: str, model_id: str | None, *, bedrock_id: str | None = None) -> Price | None:
        """The price of ``model_id`` served by ``provider`` (``anthropic`` | ``bedrock``), or None.

        For Bedrock, ``bedrock_id`` (the model id or inference profile actually called) decides the
        REGIONAL_PREMIUM: applied to shipped prices of REGIONAL_PREMIUM_MODELS when the id is a
        geographic profile or an in-Region id (is_regional_bedrock_id); not for ``global.``
        profiles, ids of unknown form, a missing ``bedrock_id``, or an overridden price.
        """
        name = canonical_model(model_id)
        if name is None:
            return None
        for key in ((provider, name), (None, name)):
            price = self._prices.get(key)
            if price is None:
                continue
            if (provider == "bedrock" and key not in self._overridden and name in REGIONAL_PREMIUM_MODELS
                    and bedrock_id and is_regional_bedrock_id(bedrock_id)):
                return price.scaled(REGIONAL_PREMIUM)
            return price
        return None

    def knows(self, model_id: str | None) -> bool:
        """True when some provider has a price for ``model_id``."""
        name = canonical_model(model_id)
        return name is not None and any((p, name) in self._prices for p in (None, "anthropic", "bedrock"))

    def cost_usd_micros(self, event: UsageEvent) -> int | None:
        """The event's cost in integer micro-USD, or None when its model has no price.

        Zero tokens cost 0 whatever the model (nothing was billed). For Bedrock the id actually
        called (``provider_model``) is priced when known, else the requested ``model``. Tokens:
        ``input_tokens`` at input, ``cache_creation_input_tokens`` minus its 1-hour part at the
        5-minute write rate, the 1-hour part at the 1-hour rate, ``cache_read_input_tokens`` at cache
        read, ``output_tokens`` at output; the long-context tier when the prompt exceeds 200K tokens.
        """
        if event.total_tokens == 0:
            return 0
        price = None
        if event.provider == "bedrock":
            price = self.price_for("bedrock", event.provider_model, bedrock_id=event.provider_model)
            price = price or self.price_for("bedrock", event.model, bedrock_id=event.provider_model)
        else:
            price = self.price_for(event.provider, event.model)
        if price is None:
            return None
        prompt = event.input_tokens + event.cache_creation_input_tokens + event.cache_read_input_tokens
        if price.long_context is not None and prompt > LONG_CONTEXT_THRESHOLD_TOKENS:
            price = price.long_context
        one_hour = min(event.cache_creation_1h_input_tokens, event.cache_creation_input_tokens)
        micros = (event.input_tokens * price.input
                  + event.output_tokens * price.output
                  + (event.cache_creation_input_tokens - one_hour) * price.cache_write_5m
                  + one_hour * price.cache_write_1h
                  + event.cache_read_input_tokens * price.cache_read)
        return int(micros.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))

    def rows(self) -> list[dict[str, object]]:
        """The table as JSON-ready rows (for docs and the dashboard): USD / MTok as strings."""
        return [{"provider": provider or "any", "model": model,
                 **{f: str(getattr(price, f)) for f in RATE_FIELDS}}
                for (provider, model), price in sorted(self._prices.items(), key=lambda kv: (kv[0][1], kv[0][0] or ""))]
