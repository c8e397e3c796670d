"""The dashboard in headless Chromium as teammates use it: on a 390 px phone and on a desktop,
through a host name that is not localhost (``devbox``, mapped to 127.0.0.1 by Chromium's host
resolver rules) over plain HTTP, against a proxy with ``PROXY_COOKIE_SECURE`` unset.

Every page must fit the phone's width (``document.scrollingElement.scrollWidth <= 390``), with the
log-out, Rotate and Revoke buttons on screen and the chart labels drawn at a readable size. The
fallback share leaves ``bedrock_only`` keys out; the time zone is searchable and remembered.
Screenshots: test-artifacts/ui/phone-*.png and devbox-*.png.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx2
import pytest

from tests.conftest import ADMIN_PASSWORD, CLIENT_API_KEY, RunningProxy, make_settings, start_proxy
from tests.fakes.anthropic_server import FakeAnthropic, overloaded_reply, running_fake_anthropic
from tests.fakes.bedrock_server import running_fake_bedrock
from tests.ui.test_browser import ARGS, ARTIFACTS, CHROMIUM, HTMX_FILE, HTMX_SRC, Console

PHONE_WIDTH = 390
HOST = "devbox"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (apt)"),
    pytest.mark.skipif(not HTMX_FILE.exists(), reason="needs htmx.org: cd tests/ui && npm ci"),
]

sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def env() -> Iterator[tuple[RunningProxy, FakeAnthropic]]:
    with running_fake_anthropic() as fake, running_fake_bedrock() as bedrock:
        settings = make_settings(fake.url, cookie_secure=None, bedrock_endpoint_url=bedrock.url,
                                 default_fallback_policy="anthropic_first")
        for proxy in start_proxy(settings):
            yield proxy, fake


@pytest.fixture(scope="module")
def devbox_url(env: tuple[RunningProxy, FakeAnthropic]) -> str:
    return env[0].url.replace("127.0.0.1", HOST)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                    args=[*ARGS, f"--host-resolver-rules=MAP {HOST} 127.0.0.1"])
        yield browser
        browser.close()


def open_page(browser: Any, base_url: str, **options: Any) -> Any:
    context = browser.new_context(base_url=base_url, **options)
    context.route(HTMX_SRC, lambda route: route.fulfill(
        path=str(HTMX_FILE), content_type="application/javascript; charset=utf-8",
        headers={"access-control-allow-origin": "*"}))
    page = context.new_page()
    page.set_default_timeout(10_000)
    return page


def shot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def fits(page: Any, what: str) -> None:
    width = page.evaluate("document.scrollingElement.scrollWidth")
    assert width <= PHONE_WIDTH, f"{what}: the page scrolls sideways ({width} px wide)"


def on_screen(locator: Any) -> None:
    box = locator.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE_WIDTH, box


def log_in(page: Any) -> None:
    page.goto("/ui/login")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    sync_api.expect(page.get_by_role("heading", level=1)).to_have_text("Usage overview")


def send(proxy: RunningProxy, key: str, count: int) -> None:
    client = anthropic.Anthropic(api_key=CLIENT_API_KEY, base_url=proxy.url, max_retries=0,
                                 default_headers={"x-proxy-key": key}, http_client=httpx2.Client())
    for _ in range(count):
        client.messages.create(model="claude-sonnet-4-6", max_tokens=16, messages=[{"role": "user", "content": "hi"}])


def test_every_page_fits_a_390px_phone_on_a_devbox(browser: Any, env: tuple[RunningProxy, FakeAnthropic],
                                                   devbox_url: str) -> None:
    proxy, _ = env
    expect = sync_api.expect
    send(proxy, proxy.key, 3)
    proxy.wait_for_usage(lambda t: t["requests"] >= 3)
    page = open_page(browser, devbox_url, viewport={"width": PHONE_WIDTH, "height": 844}, device_scale_factor=2,
                     is_mobile=True, has_touch=True)
    console = Console(page)

    page.goto("/ui/login")
    fits(page, "login")
    shot(page, "phone-01-login")
    log_in(page)  # plain HTTP on a non-localhost name: the cookie is not Secure, so the browser keeps it
    [cookie] = [c for c in page.context.cookies() if c["name"] == "ccp_session"]
    assert cookie["domain"] == HOST and cookie["secure"] is False and cookie["httpOnly"] is True
    expect(page.locator("#by-provider")).to_contain_text("anthropic")
    fits(page, "overview")
    on_screen(page.get_by_role("button", name="Log out"))
    label = page.locator("svg.chart text.axis.x:not(.minor)").first
    assert label.bounding_box()["height"] >= 10, "x-axis labels too small to read on a phone"
    assert page.locator("svg.chart text.axis.x.minor").count() == 0 or \
        not page.locator("svg.chart text.axis.x.minor").first.is_visible()
    shot(page, "phone-02-overview")

    page.get_by_role("link", name="Users").click()
    page.get_by_label("Name", exact=True).fill("Phone Pat")
    page.get_by_label("E-mail (optional)").fill("pat@example.com")
    page.get_by_role("button", name="Create user").click()
    expect(page.locator(".notice")).to_contain_text("User Phone Pat created.")
    expect(page.get_by_label("Name", exact=True)).to_have_value("")  # the form is cleared after success
    expect(page.get_by_label("E-mail (optional)")).to_have_value("")
    fits(page, "users")
    shot(page, "phone-03-users")

    page.get_by_role("link", name="Phone Pat").click()
    page.get_by_label("Name (optional)").fill("phone")
    page.get_by_label("Fallback policy").last.select_option("bedrock_only")
    page.get_by_role("button", name="Create key").click()
    key = page.locator("#new-key").inner_text().strip()
    expect(page.locator("#snippet-header")).to_contain_text("export ANTHROPIC_AUTH_TOKEN=bedrock-only")
    fits(page, "new key")
    shot(page, "phone-04-key-created")
    page.locator("#keys").screenshot(path=str(ARTIFACTS / "phone-04b-keys-section.png"))
    on_screen(page.get_by_role("button", name=f"Rotate key {key[:13]}"))
    on_screen(page.get_by_role("button", name=f"Revoke key {key[:13]}"))
    page.locator("#key-table tr.key-settings summary").first.click()
    fits(page, "key settings")
    shot(page, "phone-05-key-settings")

    page.get_by_role("link", name="Audit log").click()
    expect(page.locator("#audit-table")).to_contain_text("Phone Pat")  # names, not usr_ ids
    fits(page, "audit")
    shot(page, "phone-06-audit")

    page.goto("/ui/users/usr_nope")
    fits(page, "error page")

    me = open_page(browser, devbox_url, viewport={"width": PHONE_WIDTH, "height": 844}, device_scale_factor=2,
                   is_mobile=True)
    me.goto("/ui/me")
    me.get_by_label("Access key").fill(proxy.key)
    me.get_by_role("button", name="Show my usage").click()
    expect(me.locator("#me-totals")).to_contain_text("All your keys")
    assert me.url.endswith("/ui/me") and proxy.key not in me.url
    fits(me, "my usage")
    shot(me, "phone-07-me")
    me.context.close()

    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/ui/login$"))
    console.expected.append("status of 404")
    assert console.unexpected() == [], console.errors
    page.context.close()


def test_devbox_desktop_fallback_share_and_remembered_time_zone(browser: Any, env: tuple[RunningProxy, FakeAnthropic],
                                                                devbox_url: str) -> None:
    proxy, fake = env
    expect = sync_api.expect
    bedrock_only = proxy.new_key(name="bedrock", fallback_policy="bedrock_only")["key"]
    send(proxy, bedrock_only, 2)  # Bedrock by policy: not a fallback
    fake.enqueue(overloaded_reply())
    send(proxy, proxy.key, 1)  # 529 -> a real fallback
    proxy.wait_for_usage(lambda t: t["bedrock_by_policy"] >= 2 and t["fallbacks"] >= 3)
    totals = proxy.usage_totals()
    tried = totals["requests"] - totals["bedrock_by_policy"]

    page = open_page(browser, devbox_url, viewport={"width": 1280, "height": 900})
    log_in(page)
    card = page.locator("#fallback-card")
    expect(card).to_contain_text(f"1 of {tried} requests that tried Anthropic fell back")
    expect(card).to_contain_text("2 more went to Bedrock by policy")
    expect(card.locator(".value")).to_have_text(f"{100 / tried:.1f}%")
    shot(page, "devbox-01-fallback-share")

    zone = page.get_by_label("Time zone")
    assert page.locator("#tz-list option").count() > 400  # every IANA zone, searchable by typing
    zone.fill("America/Argentina/Buenos_Aires")
    zone.press("Enter")
    expect(page.locator("#report-range")).to_contain_text("America/Argentina/Buenos_Aires")
    page.goto("/ui/users")
    page.goto("/ui")  # no tz in the URL: the remembered zone
    expect(page.get_by_label("Time zone")).to_have_value("America/Argentina/Buenos_Aires")
    expect(page.locator("#report-range")).to_contain_text("America/Argentina/Buenos_Aires")
    assert page.locator("#granularity option[value=minute]").count() == 0  # 1,440 bars: not offered for 24 h
    page.get_by_label("Range", exact=True).select_option("7d")
    expect(page.locator("#report-range")).to_contain_text("per day")
    assert page.locator("#granularity option[value=hour]").count() == 1  # the menu follows the range
    shot(page, "devbox-02-time-zone")

    page.get_by_role("link", name="Audit log").click()
    page.get_by_label("Action").select_option("key.create")
    expect(page.locator("#audit-table tbody tr").first).to_contain_text("key.create")
    assert "user.create" not in page.locator("#audit-table tbody").inner_text()
    shot(page, "devbox-03-audit-filtered")
    page.context.close()
