"""Claims -> Identity (app/sso/identity.py), the post-login target check (app/sso/service.py
safe_next) and the Claude Code setup snippets (app/sso/setup.py)."""

from __future__ import annotations

import json

import pytest

from app.sso.identity import SignInRefused, claim_groups, identity_from_claims, map_groups, parse_group_list
from app.sso.service import safe_next
from app.sso.setup import setup_snippets

CLAIMS = {"sub": "00u1", "email": "Ada@Example.com", "email_verified": True, "name": "Ada",
          "groups": ["proxy-admins", "eng"]}


def identity(claims: dict = CLAIMS, **options):
    values = {"issuer": "https://idp", "groups_claim": "groups", "admin_groups": frozenset({"proxy-admins"}),
              "group_map": {}}
    values.update(options)
    return identity_from_claims(claims, **values)


def test_admin_by_group_and_actor_names_the_person() -> None:
    ada = identity()
    assert ada.admin and ada.actor == "oidc:00u1 (Ada@Example.com)"
    assert ada.idp_groups == ("proxy-admins", "eng") and ada.groups == ("proxy-admins", "eng")
    assert not identity(admin_groups=frozenset({"other"})).admin


def test_group_map_keeps_only_mapped_groups() -> None:
    ada = identity(group_map={"eng": "engineering", "proxy-admins": ["admins", "engineering"]})
    assert ada.groups == ("admins", "engineering") and ada.idp_groups == ("proxy-admins", "eng")
    assert map_groups(["x"], {"eng": "engineering"}) == ()


@pytest.mark.parametrize(("claims", "name", "groups"), [
    ({"groups": "solo"}, "groups", ("solo",)),
    ({"cognito:groups": ["a", "b", "a"]}, "cognito:groups", ("a", "b")),
    ({"realm_access": {"roles": ["r1"]}}, "realm_access.roles", ("r1",)),
    ({"groups": [1, None, "ok"]}, "groups", ("ok",)),
    ({}, "groups", ()),
])
def test_groups_claim_shapes(claims: dict, name: str, groups: tuple) -> None:
    assert claim_groups(claims, name) == groups


def test_no_email_refuses_sign_in() -> None:
    with pytest.raises(SignInRefused, match="e-mail"):
        identity({"sub": "x"})


def test_admin_groups_setting_is_comma_separated() -> None:
    assert parse_group_list(" a, b,,c ") == {"a", "b", "c"}


@pytest.mark.parametrize(("value", "expected"), [
    ("/ui/users?x=1", "/ui/users?x=1"), ("/me", "/me"), ("/ui", "/ui"),
    ("//evil.example.com/ui", "/me"), ("https://evil.example.com/me", "/me"), ("/\\evil.example.com", "/me"),
    ("/ui\r\nSet-Cookie: x", "/me"), ("/admin/users", "/me"), ("/uix", "/me"), ("", "/me"), (None, "/me"),
    ("javascript:alert(1)", "/me"),
])
def test_post_login_target_is_a_local_page(value: str | None, expected: str) -> None:
    assert safe_next(value) == expected


def test_setup_snippets_point_claude_code_at_the_proxy() -> None:
    out = setup_snippets("https://proxy.example.com/", "ccp_live_abc")
    assert json.loads(out["settings_json"]) == {"env": {
        "ANTHROPIC_BASE_URL": "https://proxy.example.com", "ANTHROPIC_CUSTOM_HEADERS": "x-proxy-key: ccp_live_abc"}}
    assert 'export ANTHROPIC_CUSTOM_HEADERS="x-proxy-key: ccp_live_abc"' in out["shell"]
    assert json.loads(out["managed_json"]) == json.loads(out["settings_json"])
    assert "/etc/claude-code/managed-settings.json" in out["managed_paths"].values()
