"""Claude Code's attribution headers -> usage-event fields (app/usage/attribution.py)."""

from __future__ import annotations

from starlette.datastructures import Headers

from hypothesis import given, settings
from hypothesis import strategies as st

from app.usage.attribution import ATTRIBUTION_HEADERS, attribution_from_headers, clean_label, is_subagent
from app.records.events import UsageEvent
from app.usage.sanitize import sanitize_event


def test_headers_become_bounded_fields_in_any_case() -> None:
    headers = Headers(raw=[(b"x-claude-code-session-id", b" 3f2a-01 "), (b"x-claude-code-agent-id", b"agent-7"),
                           (b"x-claude-code-parent-agent-id", b"main"), (b"x-claude-code-request-class", b"tool"),
                           (b"x-claude-code-compaction", b"true"), (b"authorization", b"Bearer secret")])
    assert attribution_from_headers(headers) == {"session_id": "3f2a-01", "agent_id": "agent-7",
                                                 "parent_agent_id": "main", "request_class": "tool",
                                                 "compaction": "true"}


def test_hostile_values_are_cleaned_cut_or_dropped() -> None:
    fields = attribution_from_headers({"X-Claude-Code-Session-Id": "<script>a\u0000b\u202e" + "x" * 500,
                                       "x-claude-code-agent-id": "   ", "x-claude-code-compaction": "=1+2"})
    assert fields["session_id"].startswith("scriptab") and len(fields["session_id"]) == 128
    assert "agent_id" not in fields  # nothing usable
    assert fields["compaction"] == "=1+2"  # kept here; CSV cells are made formula-safe where written
    assert attribution_from_headers({}) == {}


def test_a_subagent_is_a_request_with_a_parent_and_the_user_is_never_the_agent() -> None:
    assert is_subagent({"agent_id": "a1", "parent_agent_id": "main"})
    assert not is_subagent({"agent_id": "main"})
    event = UsageEvent(user_id="usr_1", access_key_id="ak_1", provider="anthropic", model="claude-opus-4-6",
                       **attribution_from_headers({"x-claude-code-agent-id": "usr_2"}))
    assert event.user_id == "usr_1" and event.agent_id == "usr_2"


def test_sanitize_caps_attribution_fields_set_directly() -> None:
    event = UsageEvent(user_id="u", access_key_id="k", provider="anthropic", model="m", session_id="s" * 1000,
                       compaction="\ud800", cost_estimated=1)  # type: ignore[arg-type]
    changed = sanitize_event(event)
    assert {"session_id", "compaction", "cost_estimated"} <= set(changed)
    assert len(event.session_id or "") == 128 and event.compaction == "\ufffd" and event.cost_estimated is True


def _clean_label_by_character(value: str, cap: int) -> str | None:
    """The rule spelled out character by character (the reference for the regex in clean_label)."""
    kept = "".join(c for c in value.strip()[: cap * 4] if "!" <= c <= "~" and c not in " \"'<>\\`")
    return kept[:cap] or None


@settings(max_examples=300, deadline=None)
@given(value=st.text(), cap=st.integers(1, 130))
def test_clean_label_keeps_what_the_character_rule_keeps(value: str, cap: int) -> None:
    assert clean_label(value, cap) == _clean_label_by_character(value, cap)


@settings(max_examples=200, deadline=None)
@given(lines=st.lists(st.tuples(st.sampled_from([*ATTRIBUTION_HEADERS, "x-claude-code-other", "x-api-key"]),
                                st.text(alphabet=st.characters(max_codepoint=255))), max_size=8))
def test_starlette_headers_read_in_one_pass_give_what_a_lookup_per_header_gives(lines: list[tuple[str, str]]) -> None:
    raw = [(name.encode(), value.encode("latin-1")) for name, value in lines]
    first: dict[str, str] = {}
    for name, value in lines:
        first.setdefault(name, value)  # a lookup finds the first line of each name
    assert attribution_from_headers(Headers(raw=raw)) == attribution_from_headers(first)
