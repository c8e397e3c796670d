"""Issue 15 in the dashboard and the admin API, over real sockets: the cookie's Secure flag from
the request's scheme, a clear message when no cookie comes back, failed logins in the audit log,
``GET /admin/audit`` (filters, paging, CSV), names on the audit page, the create-user form cleared,
Claude Code snippets per fallback policy, disabling a user, and ``/ui/me``."""

from __future__ import annotations

import asyncio
import csv
import html
import io
import re
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import ADMIN_PASSWORD, CLIENT_API_KEY, RunningProxy, make_settings, start_proxy
from tests.fakes.anthropic_server import FakeAnthropic
from tests.ui.conftest import UiClient, csrf_of
from tests.ui.test_routes import new_key, new_user


@pytest.fixture(scope="module")
def auto_proxy(ui_env: tuple[RunningProxy, FakeAnthropic]) -> Iterator[RunningProxy]:
    """PROXY_COOKIE_SECURE unset: the flag follows the request's scheme."""
    yield from start_proxy(make_settings(ui_env[1].url, cookie_secure=None))


# --- the cookie's Secure flag, and saying why a login cannot work ------------------------

def test_cookie_is_secure_only_when_the_request_came_over_https(auto_proxy: RunningProxy) -> None:
    plain = httpx.get(f"{auto_proxy.url}/ui/login")
    assert "Secure" not in plain.headers["set-cookie"]
    # uvicorn (proxy_headers, forwarded_allow_ips=127.0.0.1 by default) turns this into scheme https
    behind_tls = httpx.get(f"{auto_proxy.url}/ui/login", headers={"x-forwarded-proto": "https"})
    assert "; Secure" in behind_tls.headers["set-cookie"]


def test_the_app_itself_never_reads_x_forwarded_proto(auto_proxy: RunningProxy) -> None:
    async def get() -> httpx.Response:
        # Straight into the ASGI app from an untrusted address: no uvicorn proxy-headers step.
        transport = httpx.ASGITransport(app=auto_proxy.app, client=("203.0.113.9", 4000))
        async with httpx.AsyncClient(transport=transport, base_url="http://devbox:8080") as client:
            return await client.get("/ui/login", headers={"x-forwarded-proto": "https"})
    assert "Secure" not in asyncio.run(get()).headers["set-cookie"]


def test_login_without_the_cookie_says_why_not_csrf(auto_proxy: RunningProxy) -> None:
    page = httpx.get(f"{auto_proxy.url}/ui/login")
    token = csrf_of(page.text)
    # A browser that dropped the cookie: the form's token arrives, the cookie does not.
    response = httpx.post(f"{auto_proxy.url}/ui/login", data={"csrf_token": token, "username": "admin",
                                                               "password": ADMIN_PASSWORD})
    assert response.status_code == 403
    assert "did not send the dashboard's session cookie back" in html.unescape(response.text)
    assert "CSRF token" not in response.text
    assert '<form method="post" action="/ui/login">' in response.text  # the login form again, ready to retry


def test_forced_secure_cookie_over_plain_http_is_explained_up_front(ui_env: tuple[RunningProxy, FakeAnthropic]) -> None:
    for proxy in start_proxy(make_settings(ui_env[1].url, cookie_secure=True)):
        with httpx.Client(base_url=proxy.url) as browser:  # httpx, like browsers, keeps Secure cookies off http
            page = browser.get("/ui/login")
            assert "; Secure" in page.headers["set-cookie"]
            assert "Logging in will not work here" in page.text and "PROXY_COOKIE_SECURE=true" in page.text
            response = browser.post("/ui/login", data={"csrf_token": csrf_of(page.text), "username": "admin",
                                                      "password": ADMIN_PASSWORD})
            assert response.status_code == 403
            assert "browsers keep Secure cookies only over HTTPS" in html.unescape(response.text)


# --- failed logins are audited ------------------------------------------------------------

def test_failed_logins_are_audited_without_the_password(ui_proxy: RunningProxy, anon: UiClient) -> None:
    long_name = "mallory-" + "x" * 200
    anon.csrf = csrf_of(anon.get("/ui/login").text)
    assert anon.post("/ui/login", {"username": long_name, "password": "guess-one-secret"}).status_code == 401
    api = httpx.post(f"{ui_proxy.url}/admin/auth/login", auth=("admin", "guess-two-secret"))
    assert api.status_code == 401

    entries = ui_proxy.admin.get("/admin/audit", params={"action": "admin.login_failed"}).json()["data"]
    ui_entry = next(e for e in entries if e["details"]["via"] == "ui")
    api_entry = next(e for e in entries if e["details"]["via"] == "api")
    assert ui_entry["actor"] == long_name[:64] and ui_entry["details"]["truncated"] is True
    assert api_entry["actor"] == "admin" and api_entry["ip"] == "127.0.0.1"
    everything = ui_proxy.admin.get("/admin/audit", params={"limit": 500}).text
    assert "guess-one-secret" not in everything and "guess-two-secret" not in everything


# --- GET /admin/audit ---------------------------------------------------------------------

def test_audit_api_filters_pages_and_names_targets(ui_proxy: RunningProxy) -> None:
    api = ui_proxy.admin
    user = api.post("/admin/users", json={"name": "Audit Ada", "email": "audit-ada@example.com"}).json()
    key = api.post(f"/admin/users/{user['id']}/access-keys", json={"name": "ci"}).json()
    api.delete(f"/admin/access-keys/{key['id']}")

    mine = api.get("/admin/audit", params={"target": key["id"]}).json()
    assert [e["action"] for e in mine["data"]] == ["key.revoke", "key.create"]  # newest first
    assert mine["data"][0]["target_name"] == f"{key['prefix']}… ci (Audit Ada)"
    assert api.get("/admin/audit", params={"target": user["id"]}).json()["data"][0]["target_name"] == "Audit Ada"
    assert {e["action"] for e in api.get("/admin/audit", params={"action": "key.*"}).json()["data"]} <= {
        "key.create", "key.revoke", "key.rotate", "key.policy", "key.limits", "key.bedrock_key.set",
        "key.bedrock_key.delete"}
    assert all(e["actor"] == "admin" for e in api.get("/admin/audit", params={"actor": "admin"}).json()["data"])

    first = api.get("/admin/audit", params={"limit": 2}).json()
    assert len(first["data"]) == 2 and first["has_more"] is True and first["next_offset"] == 2
    second = api.get("/admin/audit", params={"limit": 2, "offset": 2}).json()
    assert {e["id"] for e in first["data"]}.isdisjoint(e["id"] for e in second["data"])

    assert api.get("/admin/audit", params={"from": "2000-01-01", "to": "2000-01-02"}).json()["data"] == []
    assert api.get("/admin/audit", params={"limit": 0}).status_code == 400
    assert api.get("/admin/audit", params={"from": "yesterday"}).json()["error"]["type"] == "invalid_request_error"
    assert httpx.get(f"{ui_proxy.url}/admin/audit").status_code == 401


def test_audit_api_csv_by_parameter_or_accept_header(ui_proxy: RunningProxy) -> None:
    api = ui_proxy.admin
    api.post("/admin/users", json={"name": "=HYPERLINK(\"http://evil\")"})
    by_param = api.get("/admin/audit", params={"format": "csv", "action": "user.create"})
    by_accept = api.get("/admin/audit", params={"action": "user.create"}, headers={"accept": "text/csv"})
    for response in (by_param, by_accept):
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(response.text)))
        assert list(rows[0]) == ["time", "actor", "action", "target_type", "target_id", "target_name", "ip", "details"]
        assert all(r["action"] == "user.create" for r in rows)
        evil = next(r for r in rows if "HYPERLINK" in r["target_name"])
        assert evil["target_name"].startswith("'=")  # a spreadsheet shows it as text, never runs it
    assert api.get("/admin/audit", params={"format": "xml"}).status_code == 400


def test_audit_page_shows_names_and_filters_by_actor_action_target_and_time(admin: UiClient,
                                                                              ui_proxy: RunningProxy) -> None:
    user_id = new_user(admin, "Named Nadia")
    key_id, _ = new_key(admin, user_id)
    page = admin.get(f"/ui/audit?target={key_id}").text
    assert "Named Nadia" in page and f'title="{key_id}"' in page  # name shown, id on hover
    assert page.count("<tr><td") == 1 and "key.create" in page
    assert "Named Nadia" in admin.get(f"/ui/audit?target={user_id}").text
    assert "user.create" not in admin.get("/ui/audit?action=key.create").text.split("<tbody>")[1]
    assert "No entries." in admin.get("/ui/audit?actor=somebody-else").text
    assert "No entries." in admin.get("/ui/audit?from=2001-01-01&to=2001-01-31").text
    download = admin.get(f"/ui/audit.csv?target={key_id}")
    assert download.headers["content-type"].startswith("text/csv") and "Named Nadia" in download.text
    assert admin.get("/ui/audit?from=never").status_code == 400


# --- users and keys -----------------------------------------------------------------------

def test_create_user_with_htmx_sends_back_an_empty_form(admin: UiClient) -> None:
    response = admin.post("/ui/users", {"name": "Fresh Form", "email": "fresh@example.com"}, htmx=True)
    assert response.status_code == 200
    oob = re.search(r'<form id="new-user-form"[^>]*hx-swap-oob="outerHTML"[^>]*>.*?</form>', response.text, re.S)
    assert oob, "no out-of-band form"
    assert "Fresh Form" not in oob.group(0) and "fresh@example.com" not in oob.group(0)
    assert "value=" not in re.sub(r'name="csrf_token" value="[^"]*"', "", oob.group(0))  # every field empty


@pytest.mark.parametrize("policy,credential,absent", [
    ("bedrock_only", "export ANTHROPIC_AUTH_TOKEN=bedrock-only", "ANTHROPIC_API_KEY"),
    ("", "export ANTHROPIC_API_KEY=sk-ant-...", "ANTHROPIC_AUTH_TOKEN=bedrock-only"),
    ("anthropic_only", "export ANTHROPIC_API_KEY=sk-ant-...", "ANTHROPIC_AUTH_TOKEN=bedrock-only"),
])
def test_key_snippet_matches_the_policy(admin: UiClient, policy: str, credential: str, absent: str) -> None:
    user_id = new_user(admin, f"Snippet {policy or 'default'}")
    response = admin.post(f"/ui/users/{user_id}/keys", {"name": "x", "fallback_policy": policy}, htmx=True)
    header = re.search(r'<pre id="snippet-header"[^>]*>(.*?)</pre>', response.text, re.S).group(1)
    path = re.search(r'<pre id="snippet-path"[^>]*>(.*?)</pre>', response.text, re.S).group(1)
    for snippet in (header, path):
        assert credential in snippet and absent not in snippet
    assert header.startswith("export ANTHROPIC_BASE_URL=https://proxy.example.com\n")


def test_disabling_a_user_refuses_their_keys(admin: UiClient, ui_proxy: RunningProxy) -> None:
    user_id = new_user(admin, "Leaving Lee")
    _, key = new_key(admin, user_id)
    hello = {"model": "claude-sonnet-4-6", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
    headers = {"x-proxy-key": key, "x-api-key": CLIENT_API_KEY}
    assert httpx.post(f"{ui_proxy.url}/v1/messages", json=hello, headers=headers).status_code == 200
    response = admin.post(f"/ui/users/{user_id}/status", {"status": "disabled"})
    assert response.status_code == 303 and response.headers["location"].endswith("notice=user-disabled")
    assert "Enable user" in admin.get(f"/ui/users/{user_id}").text
    assert httpx.post(f"{ui_proxy.url}/v1/messages", json=hello, headers=headers).status_code == 401
    assert admin.post(f"/ui/users/{user_id}/status", {"status": "gone"}).status_code == 400


# --- /ui/me -------------------------------------------------------------------------------

def test_me_page_shows_a_developers_own_usage_with_scope_user(admin: UiClient, anon: UiClient,
                                                              ui_proxy: RunningProxy) -> None:
    user_id = new_user(admin, "Dev Dana")
    old_id, old_key = new_key(admin, user_id)
    hello = {"model": "claude-sonnet-4-6", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
    for _ in range(2):
        httpx.post(f"{ui_proxy.url}/v1/messages", json=hello, headers={"x-proxy-key": old_key, "x-api-key": CLIENT_API_KEY})
    rotated = admin.post(f"/ui/keys/{old_id}/rotate", {"confirm": "yes"})
    new_key_text = re.search(r'<pre id="new-key"[^>]*>(sk-ccp-[\w-]+)</pre>', rotated.text).group(1)
    httpx.post(f"{ui_proxy.url}/v1/messages", json=hello, headers={"x-proxy-key": new_key_text, "x-api-key": CLIENT_API_KEY})
    ui_proxy.wait_for_usage(lambda t: t["requests"] >= 3, user_id=user_id)

    anon.csrf = csrf_of(anon.get("/ui/me").text)
    response = anon.post("/ui/me", {"key": new_key_text, "range": "24h", "tz": "UTC"})
    assert response.status_code == 200
    assert new_key_text not in response.text  # never echoed
    totals = re.findall(r'data-label="Requests">(\d+)<', response.text)
    assert totals == ["1", "3"]  # this key; all of Dana's keys (scope=user)
    assert "Dev Dana" in response.text and "No limits are set" in response.text

    fragment = anon.post("/ui/me", {"key": new_key_text, "range": "7d", "tz": "UTC"}, htmx=True)
    assert "<html" not in fragment.text and 'id="me-totals"' in fragment.text

    bad = anon.post("/ui/me", {"key": old_key, "range": "24h", "tz": "UTC"})  # rotated away: revoked
    assert bad.status_code == 401 and "unknown, revoked or expired" in bad.text
    assert anon.post("/ui/me", {"key": new_key_text}, csrf=None).status_code == 403
