"""``/me`` over HTTP against the real IdP: the developer's own keys (create, limit, rotate,
revoke, only their own, CSRF, self-service off), a key working through the proxy with the
official SDK, their usage on the page, and the audit log naming the person."""

from __future__ import annotations

import html
import re
import time
from collections.abc import Iterator

import anthropic
import httpx
import pytest

from tests.conftest import CLIENT_API_KEY
from tests.sso.conftest import SsoProxy
from tests.sso.flow import csrf_of, sign_in

NEW_KEY = re.compile(r'<pre id="new-key-value"[^>]*>([^<]+)</pre>')


@pytest.fixture(scope="module")
def erin(sso_proxy: SsoProxy) -> Iterator[httpx.Client]:
    """Bob, signed in at /me once for the module."""
    with httpx.Client(base_url=sso_proxy.url, timeout=30) as client:
        page = sign_in(client, "bob")
        assert page.status_code == 200 and "Bob Developer" in page.text
        yield client


def new_key(page: httpx.Response) -> str:
    match = NEW_KEY.search(page.text)
    assert match, "no new key on the page"
    return match.group(1).strip()


def active_key_ids(client: httpx.Client) -> list[str]:
    return re.findall(r'action="/me/keys/(ak_[0-9a-f]+)/revoke"', client.get("/me").text)


def test_a_developer_creates_a_key_and_claude_code_requests_work_with_it(
        sso_proxy: SsoProxy, erin: httpx.Client) -> None:
    page = erin.get("/me")
    assert "idp_groups" not in page.text and "engineering" in page.text  # IdP group shown, mapped to "eng"
    created = erin.post("/me/keys", data={"csrf_token": csrf_of(page.text), "name": "laptop"})
    assert created.status_code == 200
    key = new_key(created)
    text = html.unescape(created.text)
    assert f'"ANTHROPIC_CUSTOM_HEADERS": "x-proxy-key: {key}"' in text
    assert f'"ANTHROPIC_BASE_URL": "{sso_proxy.url}"' in text
    assert "no-store" in created.headers["cache-control"]
    client = anthropic.Anthropic(api_key=CLIENT_API_KEY, base_url=sso_proxy.url, max_retries=0,
                                 default_headers={"x-proxy-key": key})
    message = client.messages.create(model="claude-sonnet-4-6", max_tokens=32,
                                     messages=[{"role": "user", "content": "hi"}])
    assert message.content[0].type == "text"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # usage is written in batches (usage_flush_interval_s)
        usage = erin.get("/me").text
        if "claude-sonnet-4-6" in usage:
            break
        time.sleep(0.1)
    assert "<code>claude-sonnet-4-6</code>" in usage
    assert key not in usage  # shown once, never again
    user = next(iter(sso_proxy.admin.get("/admin/users", params={"search": "bob@"}).json()["data"]))
    eng = sso_proxy.admin.get("/admin/groups/eng").json()  # the group map's target, created at sign-in
    assert user["groups"] == [eng["id"]] and user["idp_groups"] == ["engineering"]
    entries = sso_proxy.admin.get(f"/admin/users/{user['id']}").json()["access_keys"]
    assert [k["name"] for k in entries if k["status"] == "active"][0] == "laptop"


def test_key_actions_need_the_csrf_token(erin: httpx.Client) -> None:
    response = erin.post("/me/keys", data={"name": "no-token"})
    assert response.status_code == 403 and "CSRF" in response.text


def test_the_key_limit_rotate_and_revoke(sso_proxy: SsoProxy, erin: httpx.Client) -> None:
    csrf = csrf_of(erin.get("/me").text)
    while len(active_key_ids(erin)) < 2:
        assert erin.post("/me/keys", data={"csrf_token": csrf}).status_code == 200
    refused = erin.post("/me/keys", data={"csrf_token": csrf})
    assert refused.status_code == 400 and "the most this proxy allows" in refused.text
    first = active_key_ids(erin)[0]
    rotated = erin.post(f"/me/keys/{first}/rotate", data={"csrf_token": csrf})
    assert rotated.status_code == 200 and new_key(rotated)
    assert first not in active_key_ids(erin)
    second = active_key_ids(erin)[0]
    assert erin.post(f"/me/keys/{second}/revoke", data={"csrf_token": csrf}).status_code == 200
    assert second not in active_key_ids(erin)


def test_someone_elses_key_is_not_found(sso_proxy: SsoProxy, erin: httpx.Client) -> None:
    csrf = csrf_of(erin.get("/me").text)
    other = sso_proxy.admin.post("/admin/users", json={"name": "Zed"}).json()
    key = sso_proxy.admin.post(f"/admin/users/{other['id']}/access-keys", json={}).json()
    response = erin.post(f"/me/keys/{key['id']}/revoke", data={"csrf_token": csrf})
    assert response.status_code == 404
    assert sso_proxy.admin.get(f"/admin/users/{other['id']}").json()["access_keys"][0]["status"] == "active"


def test_self_service_can_be_turned_off(sso_proxy: SsoProxy, erin: httpx.Client) -> None:
    settings = sso_proxy.services.settings
    settings.self_service_enabled = False
    try:
        page = erin.get("/me")
        assert "turned off" in page.text and 'action="/me/keys"' not in page.text
        response = erin.post("/me/keys", data={"csrf_token": csrf_of(page.text)})
        assert response.status_code == 403
    finally:
        settings.self_service_enabled = True


def test_sign_out_ends_the_session(sso_proxy: SsoProxy) -> None:
    with httpx.Client(base_url=sso_proxy.url, timeout=30) as client:
        page = sign_in(client, "carol")
        stolen = dict(client.cookies)
        assert client.post("/me/logout", data={"csrf_token": csrf_of(page.text)}).status_code == 303
    with httpx.Client(base_url=sso_proxy.url, timeout=30, cookies=stolen) as copy:
        assert "Sign in with single sign-on" in copy.get("/me").text  # a copied cookie is dead too
    (entry,) = sso_proxy.admin.get("/admin/audit", params={"action": "sso.logout"}).json()["data"]
    assert (entry["actor"], entry["details"]) == ("oidc:carol (carol@example.com)", {"via": "me"})


def test_audit_log_names_the_person(sso_proxy: SsoProxy, erin: httpx.Client) -> None:
    with httpx.Client(base_url=sso_proxy.url, timeout=30) as alice:
        page = sign_in(alice, "alice", "/ui/audit")
        assert page.status_code == 200 and "oidc:alice (alice@example.com)" in page.text
        assert "oidc:bob (bob@example.com)" in page.text and "key.create" in page.text
