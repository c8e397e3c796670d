"""The dashboard in headless Chromium (Playwright, Debian's /usr/bin/chromium): login, users,
keys (shown once, rotate, revoke, Bedrock key), usage of requests sent through the proxy, the audit
log, and the same forms with JavaScript off. The htmx CDN URL is served from the pinned npm package
(tests/ui/node_modules), whose sha384 must equal the template's ``integrity``; the browser enforces
it, so htmx running at all proves the hash. Screenshots go to test-artifacts/ui/.
"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

import anthropic
import httpx2
import pytest

from app.ui.render import HTMX_INTEGRITY, HTMX_SRC
from tests.conftest import ADMIN_PASSWORD, CLIENT_API_KEY, RunningProxy

CHROMIUM = Path("/usr/bin/chromium")
HTMX_FILE = Path(__file__).parent / "node_modules" / "htmx.org" / "dist" / "htmx.min.js"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "ui"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (apt)"),
    pytest.mark.skipif(not HTMX_FILE.exists(), reason="needs htmx.org: cd tests/ui && npm ci"),
]

sync_api = pytest.importorskip("playwright.sync_api")


def test_pinned_htmx_file_matches_template_integrity() -> None:
    digest = base64.b64encode(hashlib.sha384(HTMX_FILE.read_bytes()).digest()).decode()
    assert HTMX_INTEGRITY == f"sha384-{digest}"
    assert HTMX_SRC == "https://cdn.jsdelivr.net/npm/htmx.org@2.0.11/dist/htmx.min.js"



class Console:
    """Collects console errors and page errors. Chromium logs every 4xx/5xx answer as "Failed to
    load resource"; ``expect_status`` marks the ones a step provokes on purpose."""

    def __init__(self, page: sync_api.Page) -> None:
        self.errors: list[str] = []
        self.expected: list[str] = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))

    def unexpected(self) -> list[str]:
        return [e for e in self.errors if not any(x in e for x in self.expected)]


def new_page(browser: sync_api.Browser, base_url: str, **options: object) -> sync_api.Page:
    context = browser.new_context(base_url=base_url, viewport={"width": 1280, "height": 900}, **options)
    context.route(HTMX_SRC, lambda route: route.fulfill(
        path=str(HTMX_FILE), content_type="application/javascript; charset=utf-8",
        headers={"access-control-allow-origin": "*"}))
    page = context.new_page()
    page.set_default_timeout(10_000)
    return page


def shot(page: sync_api.Page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def send_messages(proxy: RunningProxy, key: str, count: int) -> None:
    client = anthropic.Anthropic(api_key=CLIENT_API_KEY, base_url=proxy.url, max_retries=0,
                                 default_headers={"x-proxy-key": key}, http_client=httpx2.Client())
    for _ in range(count):
        client.messages.create(model="claude-sonnet-4-6", max_tokens=32,
                               messages=[{"role": "user", "content": "hi"}])


def test_dashboard_flow(browser: sync_api.Browser, ui_proxy: RunningProxy) -> None:
    expect = sync_api.expect
    page = new_page(browser, ui_proxy.url)
    console = Console(page)

    # login: a wrong password first
    page.goto("/ui/users")
    expect(page).to_have_url(re.compile(r"/ui/login\?next=%2Fui%2Fusers$"))
    console.expected.append("status of 401")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("invalid username or password")
    shot(page, "01-login-failed")
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_label("Password").press("Enter")  # keyboard only
    expect(page).to_have_url(re.compile(r"/ui/users$"))
    page.wait_for_load_state()
    assert page.evaluate("typeof htmx === 'object' && htmx.version") == "2.0.11"  # loaded, SRI accepted

    # create a user inline (htmx: the list updates, the page does not reload)
    page.evaluate("window.__no_reload = true")
    page.get_by_label("Name", exact=True).fill("Lin <b>Chen</b>")
    page.get_by_label("E-mail (optional)").fill("lin@example.com")
    page.get_by_role("button", name="Create user").click()
    expect(page.locator(".notice")).to_contain_text("User Lin <b>Chen</b> created.")
    assert page.evaluate("window.__no_reload") is True
    expect(page.locator("tr.highlight")).to_contain_text("Lin <b>Chen</b>")  # as text, not markup
    page.get_by_label("Search name or e-mail").fill("lin@")
    expect(page.locator("#user-list tbody tr")).to_have_count(1)
    shot(page, "02-users")

    # create a key: shown once with both snippets
    page.get_by_role("link", name="Lin <b>Chen</b>").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Lin <b>Chen</b>")
    user_id = page.url.rsplit("/", 1)[-1]
    page.get_by_label("Name (optional)").fill("laptop")
    page.get_by_role("button", name="Create key").click()
    key = page.locator("#new-key").inner_text().strip()
    assert key.startswith("sk-ccp-")
    expect(page.locator("#snippet-path")).to_contain_text(f"export ANTHROPIC_BASE_URL=https://proxy.example.com/ak/{key}\n")
    expect(page.locator("#snippet-header")).to_contain_text(f'ANTHROPIC_CUSTOM_HEADERS="x-proxy-key: {key}"')
    expect(page.get_by_role("button", name="Copy").first).to_be_visible()
    shot(page, "03-key-created")
    page.reload()
    expect(page.locator("#key-table")).to_contain_text(key[:13])
    assert key not in page.content()
    expect(page.locator("#new-key")).to_have_count(0)

    # requests through the proxy with that key show up in the user's usage
    send_messages(ui_proxy, key, 3)
    ui_proxy.wait_for_usage(lambda t: t["requests"] >= 3, user_id=user_id)
    page.reload()
    expect(page.locator(".card").first).to_contain_text("3")
    expect(page.locator("#by-model")).to_contain_text("claude-sonnet-4-6")

    # Bedrock API key: write-only
    key_id = page.locator("#key-table tbody tr[id^=key-]").first.get_attribute("id").removeprefix("key-")
    page.locator(f"#key-{key_id} + tr summary").click()
    page.locator(f"#bedrock-{key_id}").fill("ABSK-browser-test-secret")
    page.get_by_role("button", name="Register Bedrock key").click()
    expect(page.locator(f"#key-{key_id} .bedrock-status")).to_contain_text("registered 20")
    assert "ABSK-browser-test-secret" not in page.content()

    # rotate (hx-confirm accepted): a new key once, the old row "rotated" (not "revoked")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name=f"Rotate key {key[:13]}").click()
    expect(page.locator("#new-key")).to_be_visible()
    rotated = page.locator("#new-key").inner_text().strip()
    assert rotated.startswith("sk-ccp-") and rotated != key
    expect(page.locator(f"#key-{key_id} .badge")).to_have_text("rotated")
    shot(page, "04-key-rotated")

    # revoke the new key; a dismissed confirmation changes nothing
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.get_by_role("button", name=f"Revoke key {rotated[:13]}").click()
    expect(page.locator("#new-key")).to_be_visible()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name=f"Revoke key {rotated[:13]}").click()
    expect(page.locator(".notice")).to_have_text("Access key revoked.")
    expect(page.locator("#key-table .badge.active")).to_have_count(0)
    shot(page, "05-user-detail")

    # overview: the requests, split by provider, and the time zone switch (htmx swap)
    page.get_by_role("link", name="Overview").click()
    expect(page.locator("#by-provider")).to_contain_text("anthropic")
    expect(page.locator("#top-users")).to_contain_text("Lin <b>Chen</b>")
    page.get_by_label("Time zone").fill("Asia/Seoul")
    page.get_by_label("Time zone").press("Enter")
    expect(page.locator("#usage-report")).to_contain_text("Asia/Seoul")
    expect(page).to_have_url(re.compile(r"tz=Asia%2FSeoul"))
    assert page.locator("svg.chart g.bar title").count() > 0
    shot(page, "06-overview")

    # audit log: every action above, from the browser's IP, login via the dashboard
    page.get_by_role("link", name="Audit log").click()
    table = page.locator("#audit-table")
    for action in ("admin.login", "user.create", "key.create", "key.bedrock_key.set", "key.rotate", "key.revoke"):
        expect(table).to_contain_text(action)
    expect(table.locator("tr", has_text="admin.login").first).to_contain_text('"via": "ui"')
    expect(table).to_contain_text("127.0.0.1")
    shot(page, "07-audit")

    # log out
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/ui/login$"))
    assert console.unexpected() == [], console.errors
    page.context.close()


def test_forms_work_without_javascript(browser: sync_api.Browser, ui_proxy: RunningProxy) -> None:
    page = new_page(browser, ui_proxy.url, java_script_enabled=False)
    page.goto("/ui/login")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.goto("/ui/users")
    page.get_by_label("Name", exact=True).fill("NoScript Nora")
    page.get_by_role("button", name="Create user").click()
    sync_api.expect(page.locator(".notice")).to_have_text("User created.")
    page.get_by_role("button", name="Create key").click()
    key = page.locator("#new-key").inner_text().strip()
    assert key.startswith("sk-ccp-")
    page.get_by_role("button", name=f"Revoke key {key[:13]}").click()
    sync_api.expect(page.get_by_role("heading", name="Please confirm")).to_be_visible()
    shot(page, "08-nojs-confirm")
    page.get_by_role("button", name="Yes, continue").click()
    sync_api.expect(page.locator(".notice")).to_have_text("Access key revoked.")
    sync_api.expect(page.locator("#key-table .badge")).to_have_text("revoked")
    page.context.close()
