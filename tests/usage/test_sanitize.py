"""sanitize_event: whatever the client and the upstream sent, the event becomes storable (pymongo's
BSON encoder takes it), counts are integers in range, and clean events are left alone."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import bson
from hypothesis import given, settings
from hypothesis import strategies as st

from app.records.events import UsageEvent
from app.usage.sanitize import (
    MAX_COST_USD_MICROS,
    MAX_LATENCY_MS,
    MAX_NOTES,
    MAX_TOKENS,
    NOTE_MAX_CHARS,
    STRING_CAPS,
    TOKEN_FIELDS,
    clean_count,
    clean_text,
    cleaned_fields,
    sanitize_event,
)


def ev(**overrides: object) -> UsageEvent:
    values: dict[str, object] = dict(user_id="usr_1", access_key_id="ak_1", provider="anthropic",
                                     model="claude-haiku-4-5", input_tokens=10, output_tokens=2, latency_ms=12.5)
    values.update(overrides)
    return UsageEvent(**values)  # type: ignore[arg-type]


anything = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**200), max_value=2**200),
    st.floats(allow_nan=True, allow_infinity=True), st.text(), st.binary(max_size=20),
    st.text(alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)),
    st.decimals(allow_nan=False), st.lists(st.text(), max_size=3), st.just(object()),
)
with_surrogates = st.lists(st.one_of(st.characters(), st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)),
                          max_size=300).map("".join)
texts = st.one_of(st.none(), st.text(max_size=600), with_surrogates, st.integers(), st.just(object()))


@settings(max_examples=300, deadline=None)
@given(model=texts, provider_model=texts, request_id=texts, fallback_reason=texts, user_id=texts,
       tokens=st.lists(anything, min_size=5, max_size=5), status=anything, latency=anything, ttft=anything,
       cost=anything, notes=st.one_of(st.lists(texts, max_size=40), anything), streamed=anything)
def test_any_event_becomes_storable_and_in_range(model: object, provider_model: object, request_id: object,
                                                 fallback_reason: object, user_id: object, tokens: list[object],
                                                 status: object, latency: object, ttft: object, cost: object,
                                                 notes: object, streamed: object) -> None:
    event = ev(model=model, provider_model=provider_model, request_id=request_id, fallback_reason=fallback_reason,
               user_id=user_id, status=status, latency_ms=latency, ttft_ms=ttft, cost_usd_micros=cost,
               notes=notes, streamed=streamed, **dict(zip(TOKEN_FIELDS, tokens, strict=True)))
    sanitize_event(event)
    bson.encode(event.to_document())  # pymongo's encoder: no UnicodeEncodeError, OverflowError, InvalidDocument
    for name in TOKEN_FIELDS:
        value = getattr(event, name)
        assert type(value) is int and 0 <= value <= MAX_TOKENS
    assert type(event.status) is int and 0 <= event.status <= 999
    assert type(event.latency_ms) is float and 0 <= event.latency_ms <= MAX_LATENCY_MS
    assert event.ttft_ms is None or (type(event.ttft_ms) is float and 0 <= event.ttft_ms <= MAX_LATENCY_MS)
    assert event.cost_usd_micros is None or (type(event.cost_usd_micros) is int
                                             and 0 <= event.cost_usd_micros <= MAX_COST_USD_MICROS)
    assert type(event.streamed) is bool
    for name, cap in STRING_CAPS.items():
        value = getattr(event, name)
        assert value is None or (type(value) is str and len(value) <= cap)
    assert len(event.notes) <= MAX_NOTES and all(len(n) <= NOTE_MAX_CHARS for n in event.notes)
    assert cleaned_fields(event) == {}  # idempotent: a clean event stays as it is


@given(st.text(max_size=300))
def test_valid_text_is_kept_exactly_up_to_its_cap(text: str) -> None:
    if not any(0xD800 <= ord(c) <= 0xDFFF for c in text):
        assert clean_text(text, 256) == text[:256]


def test_a_clean_event_is_not_touched() -> None:
    event = ev(ttft_ms=3.0, cost_usd_micros=120, notes=["thinking_stripped"], request_id="req_1")
    before = event.to_document()
    assert sanitize_event(event) == ()
    assert event.to_document() == before


def test_the_cases_from_issue_10() -> None:
    event = ev(model="claude-\ud800", input_tokens=int(1e308), output_tokens=-7, cache_read_input_tokens=1e308,
               latency_ms=math.inf, ttft_ms=math.nan, cost_usd_micros=math.nan)
    fixed = sanitize_event(event)
    assert set(fixed) == {"model", "input_tokens", "output_tokens", "cache_read_input_tokens", "latency_ms",
                          "ttft_ms", "cost_usd_micros"}
    assert event.model == "claude-\ufffd"
    assert (event.input_tokens, event.output_tokens, event.cache_read_input_tokens) == (MAX_TOKENS, 0, MAX_TOKENS)
    assert event.latency_ms == MAX_LATENCY_MS and event.ttft_ms is None and event.cost_usd_micros is None


def test_counts_from_odd_types() -> None:
    assert [clean_count(v) for v in (True, 3.9, "42", " 7 ", "1e3", "x", None, Decimal("12.5"), math.inf,
                                      -math.inf, math.nan, [1])] == [1, 3, 42, 7, 1000, 0, 0, 12, MAX_TOKENS, 0, 0, 0]


def test_strings_ids_time_and_notes() -> None:
    naive = datetime(2025, 3, 1, 12, 0)
    event = ev(model="m" * 1000, event_id="", provider=None, time=naive, notes=("a" * 100,) * 20, user_id=12)
    sanitize_event(event)
    assert event.model == "m" * 256 and len(event.event_id) == 32 and event.provider == ""
    assert event.time == naive.replace(tzinfo=UTC) and event.user_id == "12"
    assert event.notes == ["a" * NOTE_MAX_CHARS] * MAX_NOTES
    late = ev(time="yesterday")
    sanitize_event(late)
    assert datetime.now(UTC) - late.time < timedelta(minutes=1)
