"""Claude Code's attribution headers -> usage-event fields (app/usage/attribution.py)."""

from __future__ import annotations

from starlette.datastructures import Headers

from app.usage.attribution import attribution_from_headers, is_subagent
from app.usage.events import UsageEvent
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
