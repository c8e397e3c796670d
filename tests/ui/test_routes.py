"""Dashboard routes against the running app: full pages vs htmx fragments, login and session,
CSRF, escaping, error messages, and every key action through plain forms and htmx."""

from __future__ import annotations

import html
import re
import uuid

import httpx
import pytest

from tests.conftest import CLIENT_API_KEY, RunningProxy
from tests.ui.conftest import UiClient, csrf_of, logged_in

PAGES = ["/ui", "/ui/usage", "/ui/users", "/ui/audit"]
SCRIPT = "<script>alert(1)</script>"


def new_user(admin: UiClient, name: str = "Grace") -> str:
    # e-mails are unique (app/store/users.py): one address per created user
    response = admin.post("/ui/users", {"name": name, "email": f"grace-{uuid.uuid4().hex[:8]}@example.com"})
    assert response.status_code == 303, response.text
    match = re.match(r"/ui/users/(usr_\w+)", response.headers["location"])
    assert match
    return match.group(1)


def shown_key(html: str) -> str:
    """The plaintext key in a page's new-key panel."""
    match = re.search(r'<pre id="new-key"[^>]*>(sk-ccp-[\w-]+)</pre>', html)
    assert match, "no new key shown"
    return match.group(1)


def new_key(admin: UiClient, user_id: str, **form: str) -> tuple[str, str]:
    """Create a key through the plain form; returns (key id, plaintext)."""
    response = admin.post(f"/ui/users/{user_id}/keys", {"name": "laptop", **form})
    assert response.status_code == 200, response.text
    plaintext = shown_key(response.text)
    key_id = re.findall(r'id="key-(ak_\w+)"', response.text)[0]  # newest first
    return key_id, plaintext


# --- login, session, CSRF ---------------------------------------------------------------

@pytest.mark.parametrize("path", [*PAGES, "/ui/users/usr_x"])
def test_pages_redirect_to_login_without_session(anon: UiClient, path: str) -> None:
    response = anon.get(path)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/ui/login")


def test_htmx_request_without_session_redirects_whole_page(anon: UiClient) -> None:
    response = anon.get("/ui/users?search=a", htmx=True)
    assert response.status_code == 200
    assert response.headers["hx-redirect"] == "/ui/login?next=%2Fui%2Fusers%3Fsearch%3Da"


def test_login_page_sets_signed_httponly_samesite_cookie(anon: UiClient) -> None:
    response = anon.get("/ui/login")
    assert response.status_code == 200
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("ccp_session=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/ui" in cookie
    assert "Secure" not in cookie  # the tests run with cookie_secure=False (plain HTTP)
    assert 'name="csrf_token"' in response.text
    assert 'for="username"' in response.text and 'for="password"' in response.text


def test_wrong_password_shows_message_and_no_session(anon: UiClient) -> None:
    response = anon.login(password="wrong")
    assert response.status_code == 401
    assert "invalid username or password" in response.text
    assert anon.get("/ui").status_code == 303


def test_login_redirects_to_next_and_is_audited(ui_proxy: RunningProxy, anon: UiClient) -> None:
    anon.csrf = csrf_of(anon.get("/ui/login").text)
    response = anon.post("/ui/login", {"username": "admin", "password": "test-admin-password-123",
                                       "next": "/ui/audit"})
    assert response.status_code == 303 and response.headers["location"] == "/ui/audit"
    page = anon.get("/ui/audit?action=admin.login").text
    assert "admin.login" in page and "&#34;via&#34;: &#34;ui&#34;" in page and "127.0.0.1" in page


def test_login_never_redirects_off_site(anon: UiClient) -> None:
    anon.csrf = csrf_of(anon.get("/ui/login").text)
    response = anon.post("/ui/login", {"username": "admin", "password": "test-admin-password-123",
                                       "next": "//evil.example/ui"})
    assert response.headers["location"] == "/ui"


def test_login_gets_a_new_csrf_token(anon: UiClient) -> None:
    before = csrf_of(anon.get("/ui/login").text)
    anon.login()
    assert anon.csrf and anon.csrf != before


@pytest.mark.parametrize("csrf", [None, "forged-token"])
def test_post_without_valid_csrf_token_is_403_page(admin: UiClient, csrf: str | None) -> None:
    response = admin.post("/ui/users", {"name": "Mallory"}, csrf=csrf)
    assert response.status_code == 403
    assert "<html" in response.text and "CSRF token" in response.text
    assert "Mallory" not in admin.get("/ui/users").text


def test_htmx_post_without_csrf_header_is_403_fragment(admin: UiClient) -> None:
    response = admin.post("/ui/users", {"name": "Mallory"}, htmx=True, csrf=None)
    assert response.status_code == 403
    assert response.headers["hx-retarget"] == "#alerts"
    assert "<html" not in response.text and "CSRF token" in response.text


def test_login_post_needs_csrf_token(anon: UiClient) -> None:
    anon.get("/ui/login")
    response = anon.post("/ui/login", {"username": "admin", "password": "test-admin-password-123"}, csrf=None)
    assert response.status_code == 403


def test_logout_ends_session(own_admin: UiClient) -> None:
    response = own_admin.post("/ui/logout")
    assert response.status_code == 303 and response.headers["location"] == "/ui/login"
    assert own_admin.get("/ui").status_code == 303


# --- pages and fragments ----------------------------------------------------------------

@pytest.mark.parametrize("path,marker", [("/ui", "Tokens"), ("/ui/usage?range=7d", "Tokens"),
                                         ("/ui/users", "<table"), ("/ui/audit", "<table")])
def test_full_page_without_hx_request_fragment_with_it(admin: UiClient, path: str, marker: str) -> None:
    full = admin.get(path)
    fragment = admin.get(path, htmx=True)
    assert full.status_code == fragment.status_code == 200
    assert full.text.startswith("<!doctype html>") and marker in full.text
    assert "<html" not in fragment.text and "<body" not in fragment.text and marker in fragment.text
    assert full.headers["vary"] == fragment.headers["vary"] == "HX-Request"
    assert full.headers["cache-control"] == "no-store"


def test_pages_load_pinned_htmx_with_integrity(admin: UiClient) -> None:
    from app.ui.render import HTMX_INTEGRITY, HTMX_SRC

    page = admin.get("/ui").text
    assert f'<script src="{HTMX_SRC}" integrity="{HTMX_INTEGRITY}" crossorigin="anonymous"' in page
    assert "htmx.org@2.0.11" in HTMX_SRC and HTMX_INTEGRITY.startswith("sha384-")
    assert f'hx-headers=\'{{"X-CSRF-Token": "{admin.csrf}"}}\'' in page


def test_user_detail_fragment_is_the_usage_report(admin: UiClient, ui_proxy: RunningProxy) -> None:
    fragment = admin.get(f"/ui/users/{ui_proxy.user_id}?range=30d&granularity=week", htmx=True)
    assert fragment.status_code == 200
    assert "per week" in fragment.text and "Access keys" not in fragment.text


def test_history_restore_gets_full_page(admin: UiClient) -> None:
    response = admin.http.get("/ui/users", headers={"HX-Request": "true", "HX-History-Restore-Request": "true"})
    assert response.text.startswith("<!doctype html>")


def test_usage_page_timezones_and_custom_range(admin: UiClient) -> None:
    seoul = admin.get("/ui/usage?range=24h&tz=Asia/Seoul", htmx=True).text
    assert "Asia/Seoul" in seoul and "+09:00" not in seoul.split("</p>")[0]  # times shown as local
    custom = admin.get("/ui/usage?range=custom&from=2020-01-01&to=2020-01-03&granularity=day&tz=UTC").text
    assert "2020-01-01 00:00 to 2020-01-04 00:00" in custom
    any_zone = admin.get("/ui/usage?tz=America/Argentina/Buenos_Aires").text
    assert 'id="tz" name="tz" value="America/Argentina/Buenos_Aires"' in any_zone
    assert any_zone.count("<option value=") > 400  # every IANA zone in the datalist
    assert '<option value="Pacific/Chatham">' in any_zone


def test_time_zone_is_remembered_in_a_cookie(ui_proxy: RunningProxy) -> None:
    client = next(logged_in(ui_proxy))
    try:
        first = client.get("/ui/usage?tz=Asia/Kolkata")
        cookie = first.headers["set-cookie"]
        assert cookie.startswith('ccp_tz="Asia/Kolkata";') and "Path=/ui" in cookie and "HttpOnly" in cookie
        later = client.get("/ui/usage?range=7d")  # no tz in the URL: the remembered one
        assert 'value="Asia/Kolkata"' in later.text and "Asia/Kolkata" in later.text.split('id="report-range"')[1][:200]
        assert "set-cookie" not in later.headers or "ccp_tz" not in later.headers["set-cookie"]
        client.http.cookies.set("ccp_tz", "Not/AZone", path="/ui")
        assert client.get("/ui/usage").status_code == 200  # a bad cookie is ignored, never an error page
    finally:
        client.close()


def test_fine_granularity_over_a_long_range_is_coarsened_and_said(admin: UiClient) -> None:
    page = admin.get("/ui/usage?range=24h&granularity=minute&tz=UTC", htmx=True).text
    assert "per hour" in page and "per minute would draw too many bars" in page
    assert page.count('<g class="bar">') <= 2 * 25  # two charts, at most 25 hourly bars each
    assert 'hx-swap-oob="innerHTML"' in page and '<option value="minute"' not in page  # menu follows the range


# --- escaping and bad input -------------------------------------------------------------

def test_script_in_user_name_renders_as_text(admin: UiClient) -> None:
    user_id = new_user(admin, SCRIPT)
    for path in ("/ui/users", f"/ui/users/{user_id}", "/ui/audit"):
        page = admin.get(path).text
        assert SCRIPT not in page, path
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page, path
    fragment = admin.get(f"/ui/users?search={SCRIPT[:8]}", htmx=True).text
    assert SCRIPT not in fragment and "&lt;script&gt;" in fragment


@pytest.mark.parametrize("path,message", [
    ("/ui/usage?tz=Mars/Olympus", "unknown time zone"),
    ("/ui/usage?granularity=fortnight", "granularity: must be one of"),
    ("/ui/usage?range=custom&from=yesterday", "from: not an ISO 8601 date"),
    ("/ui/usage?range=1y", "range: must be one of"),
    ("/ui/users?status=zombie", "status: must be one of"),
    ("/ui/audit?page=0", "page: must be a whole number"),
])
def test_bad_query_shows_message_not_trace(admin: UiClient, path: str, message: str) -> None:
    response = admin.get(path)
    assert response.status_code == 400
    assert message in response.text and 'class="alert"' in response.text
    assert "Traceback" not in response.text


def test_unknown_user_is_404_page(admin: UiClient) -> None:
    response = admin.get("/ui/users/usr_nope")
    assert response.status_code == 404 and "user &#39;usr_nope&#39; not found" in response.text


def test_empty_name_plain_form_and_htmx(admin: UiClient) -> None:
    plain = admin.post("/ui/users", {"name": "  "})
    assert plain.status_code == 400 and "name: must not be empty" in plain.text and "<html" in plain.text
    htmx = admin.post("/ui/users", {"name": ""}, htmx=True)
    assert htmx.status_code == 400 and htmx.headers["hx-retarget"] == "#alerts"
    assert htmx.headers["hx-reswap"] == "innerHTML"
    assert htmx.text.startswith('<div class="alert"') and "name: must not be empty" in htmx.text


def test_bad_limits_show_the_field(admin: UiClient, ui_proxy: RunningProxy) -> None:
    response = admin.post(f"/ui/users/{ui_proxy.user_id}/limits", {"tokens_per_day": "lots"}, htmx=True)
    assert response.status_code == 400 and "limits.tokens_per_day: not a number" in response.text
    response = admin.post(f"/ui/users/{ui_proxy.user_id}/limits", {"tokens_per_day": "0"})
    assert response.status_code == 400 and "limits.tokens_per_day: must be a whole number" in response.text


# --- users and keys ---------------------------------------------------------------------

def test_users_search_and_status(admin: UiClient) -> None:
    new_user(admin, "Searchable Sam")
    rows = admin.get("/ui/users?search=searchable", htmx=True).text
    assert "Searchable Sam" in rows and "Ada" not in rows
    assert "Searchable Sam" not in admin.get("/ui/users?status=disabled", htmx=True).text


def test_create_user_htmx_returns_list_with_new_row(admin: UiClient) -> None:
    response = admin.post("/ui/users", {"name": "Hedy", "email": ""}, htmx=True)
    assert response.status_code == 200
    assert "User Hedy created." in response.text and 'class="highlight"' in response.text


def test_key_shown_once_with_snippets_then_gone(admin: UiClient) -> None:
    user_id = new_user(admin)
    response = admin.post(f"/ui/users/{user_id}/keys", {"name": "laptop"})
    key = shown_key(response.text)
    assert f"export ANTHROPIC_BASE_URL=https://proxy.example.com/ak/{key}" in response.text
    assert ("export ANTHROPIC_BASE_URL=https://proxy.example.com\n"
            f'export ANTHROPIC_CUSTOM_HEADERS="x-proxy-key: {key}"') in html.unescape(response.text)
    assert 'data-copy="new-key"' in response.text
    assert response.headers["cache-control"] == "no-store"
    again = admin.get(f"/ui/users/{user_id}").text
    assert key not in again and key[:13] in again  # the prefix stays, the key is gone


def test_key_works_through_the_proxy(admin: UiClient, ui_proxy: RunningProxy) -> None:
    user_id = new_user(admin)
    _, key = new_key(admin, user_id)
    response = httpx.post(f"{ui_proxy.url}/v1/messages", headers={"x-proxy-key": key, "x-api-key": CLIENT_API_KEY},
                          json={"model": "claude-sonnet-4-6", "max_tokens": 8,
                                "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 200


def test_htmx_create_key_returns_keys_fragment(admin: UiClient) -> None:
    user_id = new_user(admin)
    response = admin.post(f"/ui/users/{user_id}/keys", {"name": "ci", "fallback_policy": "bedrock_only"}, htmx=True)
    assert response.status_code == 200 and "<html" not in response.text
    assert "sk-ccp-" in response.text and "bedrock_only" in response.text


def test_revoke_needs_confirmation_without_js(admin: UiClient) -> None:
    user_id = new_user(admin)
    key_id, _ = new_key(admin, user_id)
    ask = admin.post(f"/ui/keys/{key_id}/revoke")
    assert ask.status_code == 200 and "Please confirm" in ask.text and 'name="confirm" value="yes"' in ask.text
    assert "revoked" not in admin.get(f"/ui/users/{user_id}").text.split('id="key-table"')[1].split("</tbody>")[0]
    done = admin.post(f"/ui/keys/{key_id}/revoke", {"confirm": "yes"})
    assert done.status_code == 303 and done.headers["location"] == f"/ui/users/{user_id}?notice=key-revoked#keys"
    page = admin.get(done.headers["location"]).text
    assert "Access key revoked." in page and 'class="badge revoked"' in page


def test_rotate_shows_new_key_and_marks_old_rotated(admin: UiClient) -> None:
    user_id = new_user(admin)
    key_id, old = new_key(admin, user_id)
    assert "Please confirm" in admin.post(f"/ui/keys/{key_id}/rotate", htmx=False).text
    response = admin.post(f"/ui/keys/{key_id}/rotate", {"confirm": "yes"}, htmx=True)
    assert response.status_code == 200
    new = shown_key(response.text)
    assert new != old and old not in response.text
    assert re.search(rf'id="key-{key_id}".*?badge rotated', response.text, re.S)  # rotated, not revoked


def test_policy_limits_and_bedrock_key(admin: UiClient, ui_proxy: RunningProxy) -> None:
    user_id = new_user(admin)
    key_id, _ = new_key(admin, user_id)
    response = admin.post(f"/ui/keys/{key_id}/policy", {"fallback_policy": "anthropic_only"}, htmx=True)
    assert response.status_code == 200 and '<option value="anthropic_only" selected>' in response.text
    assert admin.post(f"/ui/keys/{key_id}/policy", {"fallback_policy": "sometimes"}).status_code == 400
    response = admin.post(f"/ui/keys/{key_id}/limits", {"tokens_per_day": "1,000,000", "cost_usd_per_day": "2.5"})
    assert response.status_code == 303
    doc = ui_proxy.admin.get(f"/admin/users/{user_id}").json()["access_keys"][0]
    assert doc["limits"] == {"tokens_per_day": 1_000_000, "cost_usd_per_day": 2.5}
    secret = "ABSKQmVkcm9ja0FQSUtleS1zZWNyZXQtdmFsdWU="
    response = admin.post(f"/ui/keys/{key_id}/bedrock", {"api_key": secret}, htmx=True)
    assert response.status_code == 200, response.text
    assert secret not in response.text and "registered " in response.text
    assert "Replace Bedrock key" in response.text
    page = admin.get(f"/ui/users/{user_id}").text
    assert secret not in page and 'type="password"' in page
    assert "Please confirm" in admin.post(f"/ui/keys/{key_id}/bedrock/remove").text
    response = admin.post(f"/ui/keys/{key_id}/bedrock/remove", {"confirm": "yes"}, htmx=True)
    assert re.search(r'class="small bedrock-status">none<', response.text)
    audit = admin.get("/ui/audit").text
    for action in ("key.policy", "key.limits", "key.bedrock_key.set", "key.bedrock_key.delete"):
        assert action in audit
    assert secret not in audit


def test_user_limits_form(admin: UiClient, ui_proxy: RunningProxy) -> None:
    user_id = new_user(admin)
    response = admin.post(f"/ui/users/{user_id}/limits", {"requests_per_minute": "60"}, htmx=True)
    assert response.status_code == 200 and "Limits saved." in response.text and 'value="60"' in response.text
    response = admin.post(f"/ui/users/{user_id}/limits", {"requests_per_minute": ""})
    assert response.status_code == 303
    assert ui_proxy.admin.get(f"/admin/users/{user_id}").json()["limits"] == {}


def test_key_action_on_unknown_key_is_404(admin: UiClient) -> None:
    response = admin.post("/ui/keys/ak_nope/revoke", {"confirm": "yes"}, htmx=True)
    assert response.status_code == 404 and "not found" in response.text


# --- usage --------------------------------------------------------------------------------

def test_usage_pages_show_requests_sent_through_the_proxy(admin: UiClient, ui_proxy: RunningProxy) -> None:
    for _ in range(3):
        response = httpx.post(f"{ui_proxy.url}/v1/messages",
                              headers={"x-proxy-key": ui_proxy.key, "x-api-key": CLIENT_API_KEY},
                              json={"model": "claude-sonnet-4-6", "max_tokens": 8,
                                    "messages": [{"role": "user", "content": "hi"}]})
        assert response.status_code == 200
    totals = ui_proxy.wait_for_usage(lambda t: t["requests"] >= 3, user_id=ui_proxy.user_id)
    overview = admin.get("/ui").text
    assert "claude-sonnet-4-6" in overview and 'id="top-users"' in overview and ">Ada</a>" in overview
    assert re.search(r'<td>(?:<[^>]+>)*</span>anthropic</td>\s*<td class="num">\d+</td>', overview)
    detail = admin.get(f"/ui/users/{ui_proxy.user_id}").text
    assert f'<div class="value">{totals["requests"]:,}</div>' in detail
    assert f"{totals['total_tokens']:,}" in detail
    assert "<svg" in detail and "<title>" in detail
