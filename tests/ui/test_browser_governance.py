"""Groups, spend limits and alerts in headless Chromium at 390 px: an admin creates a group, adds a
member through htmx, sets a shared team budget, and every governance page fits the phone width
(no sideways scrolling). Screenshots in test-artifacts/ui/."""

from __future__ import annotations

import re
import uuid

import pytest

from tests.conftest import ADMIN_PASSWORD, RunningProxy
from tests.ui.test_browser import CHROMIUM, HTMX_FILE, Console, new_page, shot

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (apt)"),
    pytest.mark.skipif(not HTMX_FILE.exists(), reason="needs htmx.org: cd tests/ui && npm ci"),
]

sync_api = pytest.importorskip("playwright.sync_api")



def test_governance_pages_at_390_px(browser: object, ui_proxy: RunningProxy) -> None:
    expect = sync_api.expect
    page = new_page(browser, ui_proxy.url)  # type: ignore[arg-type]
    console = Console(page)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/ui/login")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/ui$"))

    name = f"contractors-{uuid.uuid4().hex[:6]}"
    page.get_by_role("link", name="Groups").click()
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_role("button", name="Create group").click()  # htmx: the rows come back, highlighted
    expect(page.locator("tr.highlight")).to_contain_text(name)
    page.locator("tr.highlight").get_by_role("link", name=name).click()
    page.get_by_role("button", name="Add", exact=True).click()  # htmx: the member list is swapped
    expect(page.locator("#member-list .notice")).to_contain_text("Member added")
    expect(page.locator("#member-table tbody tr")).to_have_count(1)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot(page, "governance-01-group-phone")

    page.get_by_role("link", name="Spend limits").click()
    page.get_by_label("Applies to").select_option("rbac_group_shared")
    page.get_by_label("Group (for a group cap)").select_option(label=name)
    page.get_by_label("Amount (USD; empty: no cap)").fill("250")
    page.get_by_role("button", name="Save cap").click()
    expect(page.locator(".notice")).to_contain_text("Spend limit saved")
    expect(page.locator('tr[data-scope="rbac_group_shared"]', has_text=name)).to_contain_text("$250.00")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot(page, "governance-02-spend-phone")

    page.get_by_role("link", name="Alerts").click()
    expect(page.locator("#threshold-table")).to_contain_text(name)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot(page, "governance-03-alerts-phone")
    assert console.unexpected() == []
