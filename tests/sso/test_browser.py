"""Single sign-on in headless Chromium (Playwright, Debian's /usr/bin/chromium) against the real
OpenID provider: an admin by IdP group reaches /ui; a non-admin is refused from /ui with a page
that points to /me; a developer signs in at /me, creates a key, and the official SDK then works
through the proxy with it. Screenshots go to test-artifacts/sso/."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import anthropic
import pytest

from app.ui.render import HTMX_SRC
from tests.conftest import CLIENT_API_KEY
from tests.sso.conftest import SsoProxy

CHROMIUM = Path("/usr/bin/chromium")
HTMX_FILE = Path(__file__).parents[1] / "ui" / "node_modules" / "htmx.org" / "dist" / "htmx.min.js"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "sso"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (apt)")]
sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        yield browser
        browser.close()


def new_page(browser: sync_api.Browser, base_url: str) -> sync_api.Page:
    context = browser.new_context(base_url=base_url, viewport={"width": 1280, "height": 900})
    # No CDN in tests: serve the pinned htmx when tests/ui has it, else an empty script.
    context.route(HTMX_SRC, lambda route: route.fulfill(
        path=str(HTMX_FILE), content_type="application/javascript") if HTMX_FILE.exists() else route.fulfill(
        body="", content_type="application/javascript"))
    context.route(re.compile(r"https://fonts\.googleapis\.com/.*"), lambda route: route.abort())  # the IdP's page
    page = context.new_page()
    page.set_default_timeout(15_000)
    return page


def idp_login(page: sync_api.Page, account: str) -> None:
    page.get_by_placeholder("Enter any login").fill(account)
    page.get_by_placeholder("and password").fill("any-password")
    page.get_by_role("button", name="Sign-in").click()


def test_an_admin_by_group_reaches_the_dashboard(browser: sync_api.Browser, sso_proxy: SsoProxy) -> None:
    expect = sync_api.expect
    page = new_page(browser, sso_proxy.url)
    page.goto("/ui/users")
    expect(page).to_have_url(re.compile(r"/ui/login\?next=%2Fui%2Fusers$"))
    page.screenshot(path=str(ARTIFACTS / "01-login-page.png"))
    page.get_by_role("link", name="Sign in with single sign-on").click()
    expect(page).to_have_url(re.compile(re.escape(sso_proxy.idp.issuer)))
    idp_login(page, "alice")
    expect(page).to_have_url(re.compile(re.escape(sso_proxy.url) + r"/ui/users$"))
    expect(page.locator("header .who")).to_have_text("oidc:alice (alice@example.com)")
    page.goto("/ui/audit")
    expect(page.locator("main")).to_contain_text("sso.login")
    page.screenshot(path=str(ARTIFACTS / "02-admin-dashboard.png"), full_page=True)
    page.context.close()


def test_a_non_admin_is_refused_from_the_dashboard_and_sent_to_me(
        browser: sync_api.Browser, sso_proxy: SsoProxy) -> None:
    expect = sync_api.expect
    page = new_page(browser, sso_proxy.url)
    page.goto("/ui")
    page.get_by_role("link", name="Sign in with single sign-on").click()
    idp_login(page, "bob")
    expect(page.get_by_role("alert")).to_contain_text("only for admins")
    page.screenshot(path=str(ARTIFACTS / "03-non-admin-refused.png"))
    page.goto("/ui/users")
    expect(page).to_have_url(re.compile(r"/ui/login"))  # no dashboard session was given
    page.goto("/me")
    expect(page.get_by_role("heading", level=1)).to_have_text("Bob Developer")
    page.context.close()


def test_a_developer_creates_a_key_at_me_and_uses_it(browser: sync_api.Browser, sso_proxy: SsoProxy) -> None:
    expect = sync_api.expect
    page = new_page(browser, sso_proxy.url)
    page.goto("/me")
    page.get_by_role("link", name="Sign in with single sign-on").click()
    idp_login(page, "bob")
    expect(page).to_have_url(re.compile(re.escape(sso_proxy.url) + r"/me$"))
    # free a slot if earlier tests in this module used the limit
    for button in page.get_by_role("button", name=re.compile("^Revoke")).all():
        button.click()
        page.wait_for_load_state()
    page.get_by_label("Key name (optional)").fill("browser")
    page.get_by_role("button", name="Create key").click()
    key = page.locator("#new-key-value").inner_text().strip()
    assert key.startswith("sk-ccp-")
    expect(page.locator("#setup-settings")).to_contain_text(f"x-proxy-key: {key}")
    expect(page.locator("#setup-shell")).to_contain_text(f"export ANTHROPIC_BASE_URL={sso_proxy.url}")
    page.screenshot(path=str(ARTIFACTS / "04-me-new-key.png"), full_page=True)
    client = anthropic.Anthropic(api_key=CLIENT_API_KEY, base_url=sso_proxy.url, max_retries=0,
                                 default_headers={"x-proxy-key": key})
    reply = client.messages.create(model="claude-sonnet-4-6", max_tokens=32,
                                   messages=[{"role": "user", "content": "hello from /me"}])
    assert reply.content[0].type == "text"
    page.goto("/me")  # (a reload would re-send the POST)
    expect(page.locator("#new-key-value")).to_have_count(0)  # shown once
    page.context.close()
