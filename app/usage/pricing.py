"""Prices per model and provider, and the cost of one usage event (pure: no I/O).

Rates are USD per million tokens (MTok), so ``tokens x rate`` is already micro-USD: a request's
cost in integer micro-USD is ``round(sum(tokens_i x rate_i))`` (half-even, once per request).

Source: Anthropic's pricing page, https://platform.claude.com/docs/en/about-claude/pricing
("Model pricing"; prompt caching multipliers: 5-minute cache write = 1.25x base input, 1-hour
cache write = 2x, cache read = 0.1x). Each entry of PRICES names where its price comes from in
SOURCES (``source`` in :meth:`PriceTable.rows`, the dashboard and docs/usage.md). Bedrock lists these
models at the same per-token prices, which is what its *global* cross-Region inference profiles
(``global.``) charge; for the Claude 4.5 generation and later, geographic profiles (``us.``,
``eu.``, ``apac.``...) and in-Region ids cost about 10% more (AWS: "Global cross-Region
inference", bedrock/latest/userguide/global-cross-region-inference.html, and the Bedrock pricing
page https://aws.amazon.com/bedrock/pricing/), applied here as REGIONAL_PREMIUM.

Precedence (highest first): admin overrides (MongoDB ``prices``, set in ``/admin/pricing`` or the
dashboard; :meth:`PriceTable.set_admin_overrides`), then ``PROXY_PRICING_OVERRIDES``, then PRICES.
Within a layer a provider-specific entry (``bedrock:<model>``) beats one for any provider.

Unknown models are never free: a model id with no price in any layer is billed at
``unknown_price`` (default $5 / $25 per MTok, ``PROXY_UNKNOWN_MODEL_INPUT_USD_PER_MTOK`` /
``..._OUTPUT_...``), the event is flagged ``cost_estimated`` and the id is logged once.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from functools import lru_cache
from typing import Any

from app.bedrock.models import ALIASES as BEDROCK_ALIASES
from app.bedrock.models import MODELS as BEDROCK_MODELS
from app.bedrock.models import normalize
from app.records.events import UsageEvent
from app.usage.price_list import (  # noqa: F401 - re-exported: callers import prices from here
    CACHE_READ_MULTIPLIER,
    CACHE_WRITE_1H_MULTIPLIER,
    CACHE_WRITE_5M_MULTIPLIER,
    DEFAULT_UNKNOWN_PRICE,
    PRICE_SOURCES,
    PRICES,
    RATE_FIELDS,
    SOURCES,
    Price,
    plain_rate,
)

log = logging.getLogger(__name__)

REGIONAL_PREMIUM = Decimal("1.1")
LONG_CONTEXT_THRESHOLD_TOKENS = 200_000
UNKNOWN_MODEL_LOG_MAX = 1000  # ids logged once each; bounded because clients choose them
MAX_RATE_USD_PER_MTOK = 10_000  # a typo guard for overrides (100x the dearest list price)


ALIASES = BEDROCK_ALIASES  # "claude-opus-4-0" -> "claude-opus-4": one table, in app/bedrock/models.py

REGIONAL_PREMIUM_MODELS = frozenset({
    "claude-opus-5-5", "claude-sonnet-5-5", "claude-haiku-5-5", "claude-opus-5", "claude-sonnet-5",
    "claude-opus-4-8", "claude-opus-4-7", "claude-opus-4-6", "claude-opus-4-5",
    "claude-sonnet-4-6", "claude-sonnet-4-5", "claude-haiku-4-5"})

_PROFILE_PREFIXES = frozenset({"global", "us", "us-gov", "eu", "apac", "jp", "au", "ca"})
_BEDROCK_VERSION = re.compile(r"-v\d+(?::\d+)?$")  # "-v1:0", "-v2:0", "-v1" on foundation-model ids


@lru_cache(maxsize=1)
def _foundation_index() -> dict[str, str]:
    """Bedrock foundation-model id -> Anthropic base id, from app/bedrock/models.py MODELS."""
    return {entry.foundation_id.lower(): name for name, entry in BEDROCK_MODELS.items() if entry.foundation_id}


@lru_cache(maxsize=4096)  # a handful of ids in practice; bounded because clients choose them
def canonical_model(model_id: str | None) -> str | None:
    """A model id as the Anthropic API, Bedrock or Claude Code spells it -> the PRICES key form.

    Bedrock ids are looked up in app/bedrock/models.py's table (an inference-profile ARN -> its id;
    a ``global.``/``us.``/``eu.``/``apac.``... profile -> its foundation-model id -> the Anthropic
    base id); a foundation id not in that table loses ``anthropic.`` and its ``-v1:0`` version.
    Anthropic ids go through ``normalize`` (no date, ``-latest``, ``[1m]``; aliases), so
    ``claude-sonnet-4-5-20250929``, ``us.anthropic.claude-sonnet-4-5-20250929-v1:0``,
    ``arn:aws:bedrock:...:inference-profile/global.anthropic.claude-sonnet-4-5-20250929-v1:0`` and
    ``claude-sonnet-4-5[1m]`` all become ``claude-sonnet-4-5``. None or empty stays None.
    """
    if not model_id or not model_id.strip():
        return None
    name = model_id.strip().lower().rsplit("/", 1)[-1]
    prefix, dot, rest = name.partition(".")
    if dot and prefix in _PROFILE_PREFIXES:
        name = rest
    known = _foundation_index().get(name)
    if known is not None:
        return known
    if name.startswith("anthropic."):
        name = _BEDROCK_VERSION.sub("", name.removeprefix("anthropic."))
    base, _ = normalize(name)
    return base or None


_BEDROCK_REGIONAL = re.compile(r"^(?:(?:us|us-gov|eu|apac|jp|au|ca)\.)?anthropic\.")


def is_regional_bedrock_id(bedrock_id: str) -> bool:
    """True for a geographic cross-Region profile (``us.anthropic...``) or an in-Region model id
    (``anthropic...``); False for ``global.`` profiles and ids of unknown form (no premium assumed)."""
    return bool(_BEDROCK_REGIONAL.match(bedrock_id.strip().lower().rsplit("/", 1)[-1]))


Key = tuple[str | None, str]  # (provider or None for any, canonical model)


def parse_override_key(raw_key: str) -> Key:
    """``"bedrock:claude-sonnet-4-5"`` -> ``("bedrock", "claude-sonnet-4-5")``; any spelling
    canonical_model accepts. Raises ValueError for an empty model."""
    provider: str | None = None
    model = raw_key
    if raw_key.startswith(("anthropic:", "bedrock:")):
        provider, _, model = raw_key.partition(":")
    name = canonical_model(model)
    if not name:
        raise ValueError(f"empty model name in {raw_key!r}")
    return provider, name


def override_price(raw_key: str, rates: Mapping[str, Any], base: Price | None) -> Price:
    """Rates (USD / MTok; any of RATE_FIELDS) over ``base`` (the price they override, or None for a
    model with no price, which then needs ``input`` and ``output``). Missing cache rates of a new
    model follow Anthropic's multipliers. Raises ValueError naming the bad rate."""
    unknown = set(rates) - set(RATE_FIELDS)
    if unknown:
        raise ValueError(f"[{raw_key!r}]: unknown rate(s) {sorted(unknown)}; "
                         f"expected {', '.join(RATE_FIELDS)} (USD per million tokens)")
    values: dict[str, Decimal] = {}
    for name, value in rates.items():
        try:
            number = Decimal(str(value))
        except ArithmeticError:
            raise ValueError(f"[{raw_key!r}]: {name} is not a number: {value!r}") from None
        if not number.is_finite() or number < 0 or number > MAX_RATE_USD_PER_MTOK:
            raise ValueError(f"[{raw_key!r}]: rates must be >= 0 and <= {MAX_RATE_USD_PER_MTOK} USD per MTok")
        values[name] = number
    if base is None:
        if "input" not in values or "output" not in values:
            raise ValueError(f"[{raw_key!r}]: this model has no shipped price, so 'input' and 'output' are required")
        base = Price.of(values["input"], values["output"])  # type: ignore[arg-type]
    # A new input or output rate makes the shipped long-context tier meaningless.
    keep_long = "input" not in values and "output" not in values
    return Price(**{f: values.get(f, getattr(base, f)) for f in RATE_FIELDS},
                 long_context=base.long_context if keep_long else None)


@dataclass(frozen=True, slots=True)
class Quote:
    """A priced event: micro-USD, and whether it is an estimate (the model had no price)."""

    cost_usd_micros: int
    estimated: bool = False


class PriceTable:
    """PRICES plus overrides; ``quote(event)`` / ``cost_usd_micros(event)`` price one event.

    ``overrides`` (``settings.pricing_overrides``) maps a model (any spelling canonical_model
    accepts), optionally prefixed ``anthropic:`` or ``bedrock:`` for one provider only, to rates in
    USD / MTok: ``{"input", "output", "cache_write_5m", "cache_write_1h", "cache_read"}``. Missing
    rates come from the shipped price (or, for a new model, from input x the cache multipliers;
    ``input`` and ``output`` are then required). An overridden Bedrock price is used as is (no
    regional premium). Raises ValueError (message starting ``pricing_overrides``) for an unknown
    rate name, a negative or missing rate. Admin overrides (same shape) are swapped in whole by
    :meth:`set_admin_overrides` and win over both (see the module docstring).
    """

    def __init__(self, overrides: Mapping[str, Mapping[str, Any]] | None = None, *,
                 unknown_price: Price | None = None) -> None:
        self._prices: dict[Key, Price] = {(None, m): p for m, p in PRICES.items()}
        self._sources: dict[Key, str] = {(None, m): PRICE_SOURCES.get(m, "derived-tier") for m in PRICES}
        self._admin: dict[Key, Price] = {}
        self.unknown_price = unknown_price or DEFAULT_UNKNOWN_PRICE
        self._logged_unknown: set[str] = set()
        for raw_key, rates in (overrides or {}).items():
            try:
                key = parse_override_key(raw_key)
                base = self._prices.get(key) or self._prices.get((None, key[1]))
                self._prices[key] = override_price(raw_key, rates, base)
            except ValueError as exc:
                raise ValueError(f"pricing_overrides{exc}" if str(exc).startswith("[")
                                 else f"pricing_overrides: {exc}") from None
            self._sources[key] = "settings"

    # -- admin layer -------------------------------------------------------------------------
    def set_admin_overrides(self, overrides: Mapping[str, Mapping[str, Any]]) -> None:
        """Replace the admin layer (the ``prices`` collection): ``{model key: rates}`` as for
        ``overrides``; each key's base is the settings/shipped price. A bad entry is skipped and
        logged (the store held it; one bad row must not unprice the others)."""
        admin: dict[Key, Price] = {}
        for raw_key, rates in overrides.items():
            try:
                key = parse_override_key(raw_key)
                admin[key] = override_price(raw_key, rates, self._base(key))
            except ValueError as exc:
                log.warning("stored price override skipped: %s", exc)
        self._admin = admin

    def check_override(self, raw_key: str, rates: Mapping[str, Any]) -> tuple[Key, Price]:
        """Validate one admin override without applying it. Raises ValueError."""
        key = parse_override_key(raw_key)
        return key, override_price(raw_key, rates, self._base(key))

    def _base(self, key: Key) -> Price | None:
        return self._prices.get(key) or self._prices.get((None, key[1]))

    # -- lookups -----------------------------------------------------------------------------
    def price_for(self, provider: str, model_id: str | None, *, bedrock_id: str | None = None) -> Price | None:
        """The price of ``model_id`` served by ``provider`` (``anthropic`` | ``bedrock``), or None.

        For Bedrock, ``bedrock_id`` (the model id or inference profile actually called) decides the
        REGIONAL_PREMIUM: applied to shipped prices of REGIONAL_PREMIUM_MODELS when the id is a
        geographic profile or an in-Region id (is_regional_bedrock_id); not for ``global.``
        profiles, ids of unknown form, a missing ``bedrock_id``, or an overridden price.
        """
        found = self._find(provider, model_id)
        if found is None:
            return None
        price, source, name = found
        if (provider == "bedrock" and source not in ("settings", "admin") and name in REGIONAL_PREMIUM_MODELS
                and bedrock_id and is_regional_bedrock_id(bedrock_id)):
            return price.scaled(REGIONAL_PREMIUM)
        return price

    def _find(self, provider: str, model_id: str | None) -> tuple[Price, str, str] | None:
        name = canonical_model(model_id)
        if name is None:
            return None
        for key in ((provider, name), (None, name)):
            if key in self._admin:
                return self._admin[key], "admin", name
        for key in ((provider, name), (None, name)):
            price = self._prices.get(key)
            if price is not None:
                return price, self._sources.get(key, "settings"), name
        return None

    def knows(self, model_id: str | None) -> bool:
        """True when some provider has a price for ``model_id``."""
        name = canonical_model(model_id)
        return name is not None and any((p, name) in layer for p in (None, "anthropic", "bedrock")
                                        for layer in (self._prices, self._admin))

    def price_or_default(self, provider: str, model_id: str | None) -> Price:
        """``price_for`` or, for a model with no price, ``unknown_price`` (what it will be billed at)."""
        return self.price_for(provider, model_id) or self.unknown_price

    # -- pricing one event -------------------------------------------------------------------
    def quote(self, event: UsageEvent) -> Quote:
        """The event's cost in integer micro-USD and whether it is estimated.

        Zero tokens cost 0 whatever the model (nothing was billed). For Bedrock the id actually
        called (``provider_model``) is priced when known, else the requested ``model``. Tokens:
        ``input_tokens`` at input, ``cache_creation_input_tokens`` minus its 1-hour part at the
        5-minute write rate, the 1-hour part at the 1-hour rate, ``cache_read_input_tokens`` at cache
        read, ``output_tokens`` at output; the long-context tier when the prompt exceeds 200K tokens.
        A model with no price (or no model) is billed at ``unknown_price``, ``estimated=True``, and
        its id is logged once (never $0).
        """
        if event.total_tokens == 0:
            return Quote(0)
        price = None
        if event.provider == "bedrock":
            price = self.price_for("bedrock", event.provider_model, bedrock_id=event.provider_model)
            price = price or self.price_for("bedrock", event.model, bedrock_id=event.provider_model)
        else:
            price = self.price_for(event.provider, event.model)
        estimated = price is None
        if price is None:
            self._log_unknown(event.model or event.provider_model)
            price = self.unknown_price
        return Quote(tokens_cost(price, event), estimated)

    def cost_usd_micros(self, event: UsageEvent) -> int:
        """``quote(event).cost_usd_micros`` (never None: an unknown model is billed at the default tier)."""
        return self.quote(event).cost_usd_micros

    def price_event(self, event: UsageEvent) -> int:
        """The recorder's pricer: ``quote(event)``, setting ``event.cost_estimated``; returns micro-USD."""
        quote = self.quote(event)
        event.cost_estimated = quote.estimated
        return quote.cost_usd_micros

    def _log_unknown(self, model: str | None) -> None:
        label = (model or "(none)")[:120]
        if label in self._logged_unknown or len(self._logged_unknown) >= UNKNOWN_MODEL_LOG_MAX:
            return
        self._logged_unknown.add(label)
        log.warning("model %s has no price: billed at the default tier ($%s / $%s per MTok input/output) and "
                    "flagged cost_estimated; set a price under /ui/pricing or PUT /admin/pricing/{model}",
                    ascii(label), plain_rate(self.unknown_price.input), plain_rate(self.unknown_price.output))

    # -- listing -----------------------------------------------------------------------------
    def rows(self) -> list[dict[str, object]]:
        """The table in force as JSON-ready rows: ``{"provider": "any"|"anthropic"|"bedrock", "model",
        <rates as strings, USD / MTok>, "source", "overridden"}`` (``source`` a SOURCES key; the
        shipped/settings price an admin override hides is still listed, ``overridden: true``)."""
        out: list[dict[str, object]] = []
        for key, price in self._prices.items():
            out.append({"provider": key[0] or "any", "model": key[1], **price.rates(),
                        "source": self._sources.get(key, "settings"), "overridden": key in self._admin})
        for key, price in self._admin.items():
            out.append({"provider": key[0] or "any", "model": key[1], **price.rates(), "source": "admin",
                        "overridden": False})
        return sorted(out, key=lambda r: (str(r["model"]), str(r["provider"]), r["source"] != "admin"))


def tokens_cost(price: Price, event: UsageEvent) -> int:
    """Micro-USD for the event's tokens at ``price`` (the long-context tier when the prompt passes
    200K tokens), rounded half-even once."""
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
