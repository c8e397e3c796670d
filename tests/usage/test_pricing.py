"""Cost of one event, hand-computed per model family (USD / MTok x tokens = micro-USD)."""

from __future__ import annotations

import pytest

from app.usage.events import UsageEvent
from app.bedrock.models import MODELS, profile_id
from app.usage.pricing import PRICE_SOURCES, PRICES, SOURCES, Price, PriceTable, Quote, canonical_model

# 1000 input, 500 output, 2000 cache writes of which 400 are 1-hour, 10,000 cache reads.
TOKENS = dict(input_tokens=1000, output_tokens=500, cache_creation_input_tokens=2000,
              cache_creation_1h_input_tokens=400, cache_read_input_tokens=10_000)


def event(model: str | None, provider: str = "anthropic", provider_model: str | None = None,
          **tokens: int) -> UsageEvent:
    return UsageEvent(user_id="u", access_key_id="k", provider=provider, model=model,  # type: ignore[arg-type]
                      provider_model=provider_model or model, **(tokens or TOKENS))


@pytest.mark.parametrize(("model", "micros"), [
    # 1000*5 + 500*25 + 1600*6.25 + 400*10 + 10000*0.50
    ("claude-opus-4-5-20251101", 5000 + 12500 + 10000 + 4000 + 5000),
    ("claude-opus-4-6", 5000 + 12500 + 10000 + 4000 + 5000),
    # 1000*15 + 500*75 + 1600*18.75 + 400*30 + 10000*1.50
    ("claude-opus-4-1-20250805", 15000 + 37500 + 30000 + 12000 + 15000),
    ("claude-opus-4-20250514", 15000 + 37500 + 30000 + 12000 + 15000),
    ("claude-opus-4-0", 15000 + 37500 + 30000 + 12000 + 15000),
    # 1000*3 + 500*15 + 1600*3.75 + 400*6 + 10000*0.30
    ("claude-sonnet-4-5-20250929", 3000 + 7500 + 6000 + 2400 + 3000),
    ("claude-sonnet-4-6", 3000 + 7500 + 6000 + 2400 + 3000),
    ("claude-sonnet-4-20250514", 3000 + 7500 + 6000 + 2400 + 3000),
    ("claude-3-7-sonnet-20250219", 3000 + 7500 + 6000 + 2400 + 3000),
    ("claude-sonnet-4-5[1m]", 3000 + 7500 + 6000 + 2400 + 3000),
    # 1000*1 + 500*5 + 1600*1.25 + 400*2 + 10000*0.10
    ("claude-haiku-4-5-20251001", 1000 + 2500 + 2000 + 800 + 1000),
    # 1000*0.80 + 500*4 + 1600*1 + 400*1.6 + 10000*0.08
    ("claude-3-5-haiku-20241022", 800 + 2000 + 1600 + 640 + 800),
    # Haiku 3's cache rates are listed, not multiples: 1000*0.25 + 500*1.25 + 1600*0.30 + 400*0.50 + 10000*0.03
    ("claude-3-haiku-20240307", 250 + 625 + 480 + 200 + 300),
])
def test_anthropic_cost_per_family_with_cache_tokens(model: str, micros: int) -> None:
    assert PriceTable().cost_usd_micros(event(model)) == micros


@pytest.mark.parametrize(("bedrock_id", "micros"), [
    # Global cross-Region profiles cost Anthropic's list price; geographic ones 10% more (4.5 generation).
    ("global.anthropic.claude-sonnet-4-5-20250929-v1:0", 21900),
    ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", 24090),
    ("arn:aws:bedrock:us-east-1:123456789012:inference-profile/eu.anthropic.claude-haiku-4-5-20251001-v1:0",
     round(7300 * 1.1)),
    # Older models carry no regional premium.
    ("us.anthropic.claude-opus-4-1-20250805-v1:0", 109500),
    ("anthropic.claude-3-5-haiku-20241022-v1:0", 5840),
])
def test_bedrock_ids_are_priced(bedrock_id: str, micros: int) -> None:
    e = event("claude-whatever-the-client-asked", provider="bedrock", provider_model=bedrock_id)
    assert PriceTable().cost_usd_micros(e) == micros


def test_bedrock_falls_back_to_the_requested_model_without_premium() -> None:
    e = event("claude-sonnet-4-5-20250929", provider="bedrock", provider_model="custom-profile-id")
    assert PriceTable().cost_usd_micros(e) == 21900


def test_long_context_tier_for_sonnet_4_and_4_5() -> None:
    # Prompt = 150,000 input + 60,000 cache read = 210,000 > 200,000: $6 in, $22.50 out, $0.60 read.
    tokens = dict(input_tokens=150_000, cache_read_input_tokens=60_000, output_tokens=1000)
    assert PriceTable().cost_usd_micros(event("claude-sonnet-4-5", **tokens)) == 900_000 + 36_000 + 22_500
    # Exactly 200,000 is still the base rate.
    tokens = dict(input_tokens=140_000, cache_read_input_tokens=60_000, output_tokens=1000)
    assert PriceTable().cost_usd_micros(event("claude-sonnet-4", **tokens)) == 420_000 + 18_000 + 15_000


def test_rounding_is_once_per_request_half_even() -> None:
    table = PriceTable()
    assert table.cost_usd_micros(event("claude-3-5-haiku", cache_read_input_tokens=7)) == 1  # 0.56
    assert table.cost_usd_micros(event("claude-3-5-haiku", cache_read_input_tokens=6)) == 0  # 0.48
    assert table.cost_usd_micros(event("claude-3-haiku", cache_read_input_tokens=50)) == 2  # 1.5 -> 2
    assert table.cost_usd_micros(event("claude-3-haiku", cache_read_input_tokens=250)) == 8  # 7.5 -> 8


def test_unknown_model_is_billed_at_the_default_tier_flagged_and_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    table = PriceTable()
    # 1000*5 + 500*25 + 1600*6.25 + 400*10 + 10000*0.5: the $5 / $25 tier, cache rates from input
    unknown = event("claude-mystery-9")
    assert table.price_event(unknown) == 5000 + 12500 + 10000 + 4000 + 5000
    assert unknown.cost_estimated is True
    assert table.quote(event(None)).estimated and table.quote(event(None)).cost_usd_micros > 0
    table.quote(event("claude-mystery-9"))
    assert [r.getMessage() for r in caplog.records].count(
        next(r.getMessage() for r in caplog.records if "claude-mystery-9" in r.getMessage())) == 1
    known = event("claude-opus-4-6")
    table.price_event(known)
    assert known.cost_estimated is False
    # ...but zero tokens (a refused or failed request) cost nothing, whatever the model.
    assert table.cost_usd_micros(event("claude-mystery-9", input_tokens=0)) == 0


def test_the_unknown_model_tier_is_a_setting() -> None:
    table = PriceTable(unknown_price=Price.of(10, 50))
    assert table.cost_usd_micros(event("claude-mystery-9", input_tokens=1000, output_tokens=100)) == 10_000 + 5_000


def test_overrides_add_models_and_change_one_provider() -> None:
    table = PriceTable({"claude-mystery-9": {"input": 2, "output": 8},
                        "bedrock:claude-sonnet-4-5": {"input": 2.5}})
    # 1000*2 + 500*8 + 1600*2.5 + 400*4 + 10000*0.2 (cache rates derived from input)
    assert table.cost_usd_micros(event("claude-mystery-9")) == 2000 + 4000 + 4000 + 1600 + 2000
    # Only Bedrock changes, only input, and an overridden price gets no regional premium.
    bedrock = event("claude-sonnet-4-5", provider="bedrock", provider_model="us.anthropic.claude-sonnet-4-5-v1:0")
    assert table.cost_usd_micros(bedrock) == 2500 + 7500 + 6000 + 2400 + 3000
    assert table.cost_usd_micros(event("claude-sonnet-4-5")) == 21900


@pytest.mark.parametrize("overrides", [
    {"claude-new": {"input": 1}},  # a new model needs input and output
    {"claude-sonnet-4-5": {"inptu": 1}},
    {"claude-sonnet-4-5": {"input": -1}},
])
def test_bad_overrides_are_refused(overrides: dict[str, dict[str, float]]) -> None:
    with pytest.raises(ValueError, match="pricing_overrides"):
        PriceTable(overrides)


@pytest.mark.parametrize(("raw", "canonical"), [
    ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
    ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5"),
    ("global.anthropic.claude-opus-4-5-20251101-v1:0", "claude-opus-4-5"),
    ("anthropic.claude-3-5-haiku-20241022-v1:0", "claude-3-5-haiku"),
    ("claude-3-7-sonnet-latest", "claude-3-7-sonnet"),
    ("claude-opus-4-0", "claude-opus-4"),
    ("Claude-Haiku-4-5", "claude-haiku-4-5"),
])
def test_canonical_model(raw: str, canonical: str) -> None:
    assert canonical_model(raw) == canonical


@pytest.mark.parametrize("model", ["claude-opus-5-5", "claude-sonnet-5-5", "claude-haiku-5-5", "claude-opus-5",
                                   "claude-sonnet-5", "claude-opus-4-8", "claude-opus-4-7", "claude-opus-4-6",
                                   "claude-opus-4-5", "claude-opus-4-1", "claude-sonnet-4-6", "claude-sonnet-4-5",
                                   "claude-sonnet-4", "claude-haiku-4-5", "claude-3-7-sonnet", "claude-3-5-haiku"])
def test_every_current_model_is_priced_with_a_source(model: str) -> None:
    table = PriceTable()
    assert table.knows(model) and table.quote(event(model)).estimated is False
    assert PRICE_SOURCES[model] in SOURCES


def test_every_price_names_a_source_and_every_bedrock_model_has_a_price() -> None:
    assert set(PRICE_SOURCES) == set(PRICES)
    assert set(MODELS) <= set(PRICES)
    rows = PriceTable().rows()
    assert all(r["source"] in SOURCES for r in rows)
    assert {r["model"]: r["source"] for r in rows}["claude-opus-5-5"] == "derived-tier"


@pytest.mark.parametrize("model", sorted(MODELS))
@pytest.mark.parametrize("prefix", ["global", "us", "eu", "apac"])
def test_bedrock_profiles_and_foundation_ids_canonicalize_through_the_bedrock_table(model: str, prefix: str) -> None:
    foundation = MODELS[model].foundation_id
    assert canonical_model(foundation) == model
    assert canonical_model(f"{prefix}.{foundation}") == model
    assert canonical_model(profile_id(foundation, prefix)) == model
    assert canonical_model(f"arn:aws:bedrock:eu-west-1:123456789012:inference-profile/{prefix}.{foundation}") == model


def test_an_opus_5_5_bedrock_event_costs_the_same_as_on_anthropic_via_a_global_profile() -> None:
    table = PriceTable()
    anthropic = table.cost_usd_micros(event("claude-opus-5-5"))
    bedrock = table.cost_usd_micros(event("claude-opus-5-5", provider="bedrock",
                                          provider_model="global.anthropic.claude-opus-5-5"))
    regional = table.cost_usd_micros(event("claude-opus-5-5", provider="bedrock",
                                           provider_model="us.anthropic.claude-opus-5-5"))
    assert anthropic == bedrock and regional == round(anthropic * 1.1)


def test_admin_overrides_win_over_settings_and_the_table_and_can_be_replaced() -> None:
    table = PriceTable({"claude-sonnet-4-5": {"input": 2, "output": 8}})
    tokens = dict(input_tokens=1000, output_tokens=1000)
    assert table.cost_usd_micros(event("claude-sonnet-4-5", **tokens)) == 2000 + 8000
    table.set_admin_overrides({"claude-sonnet-4-5": {"input": "1", "output": "4"},
                               "claude-bad": {"input": "-1", "output": "1"}})  # a bad stored row is skipped
    assert table.cost_usd_micros(event("claude-sonnet-4-5", **tokens)) == 1000 + 4000
    assert not table.knows("claude-bad")
    row = next(r for r in table.rows() if r["model"] == "claude-sonnet-4-5" and r["source"] == "admin")
    assert row["input"] == "1" and row["cache_read"] == "0.3"  # rates not given: the price it overrides
    table.set_admin_overrides({})
    assert table.cost_usd_micros(event("claude-sonnet-4-5", **tokens)) == 2000 + 8000
    # An admin price for a model nobody knew makes it known (not estimated).
    table.set_admin_overrides({"claude-mystery-9": {"input": 1, "output": 2}})
    assert table.quote(event("claude-mystery-9", **tokens)) == Quote(1000 + 2000, False)
