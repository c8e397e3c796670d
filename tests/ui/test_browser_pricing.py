"""Pricing and model map in headless Chromium: an admin edits a price and a model-map entry in the
dashboard and sees them applied (the next request through the proxy is billed at the new price;
the mapping is the one the Bedrock path resolves). Also at 390 px. Screenshots in test-artifacts/ui/."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from tests.conftest import ADMIN_PASSWORD, RunningProxy
from tests.ui.test_browser import ARTIFACTS, CHROMIUM, HTMX_FILE, Console, new_page, send_messages, shot

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (apt)"),
    pytest.mark.skipif(not HTMX_FILE.exists(), reason="needs htmx.org: cd tests/ui && npm ci"),
]

sync_api = pytest.importorskip("playwright.sync_api")



def model_totals(proxy: RunningProxy, model: str) -> dict[str, Any]:
    """The model's usage totals once the recorder has written what it holds (polled, no clock)."""
    for _ in range(200):
        if proxy.services.recorder.depth == 0:
            break
        time.sleep(0.05)
    return proxy.admin.get("/admin/usage", params={"model": model}).json()["totals"]


def test_edit_a_price_and_a_model_mapping_and_see_them_applied(browser: object, ui_proxy: RunningProxy) -> None:
    expect = sync_api.expect
    page = new_page(browser, ui_proxy.url)  # type: ignore[arg-type]
    console = Console(page)
    page.goto("/ui/login")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/ui$"))

    # pricing: the shipped row, then an override from the form
    page.get_by_role("link", name="Pricing").click()
    row = page.locator('tr[data-model="claude-sonnet-4-6"][data-source="anthropic-published"]')
    expect(row).to_contain_text("15")
    row.get_by_role("link", name="Override").click()
    expect(page.get_by_label("Model (any spelling; Bedrock ids too)")).to_have_value("claude-sonnet-4-6")
    for field, value in (("input", "1"), ("output", "2"), ("cache write 5m", "1"), ("cache write 1h", "1"),
                         ("cache read", "1")):
        page.get_by_label(field, exact=True).fill(value)
    page.get_by_role("button", name="Save price").click()
    expect(page.locator(".notice")).to_contain_text("Price saved")
    admin_row = page.locator('tr[data-model="claude-sonnet-4-6"][data-source="admin"]')
    expect(admin_row).to_contain_text("2")
    shot(page, "pricing-01-override")

    # applied: the next request is billed at $1 / $2 per MTok
    send_messages(ui_proxy, ui_proxy.key, 1)
    totals = model_totals(ui_proxy, "claude-sonnet-4-6")
    prompt = totals["input_tokens"] + totals["cache_creation_input_tokens"] + totals["cache_read_input_tokens"]
    assert totals["requests"] == 1 and totals["output_tokens"] > 0
    assert totals["cost_usd_micros"] == prompt * 1 + totals["output_tokens"] * 2  # $1 / $2 per MTok
    assert totals["cost_estimated_requests"] == 0

    # model map: set one entry, see it in force where fallbacks resolve it
    page.get_by_role("link", name="Model map").click()
    page.get_by_label("Anthropic model id").fill("claude-sonnet-4-6")
    page.get_by_label("Bedrock model or inference profile id").fill("eu.anthropic.claude-sonnet-4-6")
    page.get_by_role("button", name="Save mapping").click()
    expect(page.locator(".notice")).to_contain_text("Model mapping saved")
    mapped = page.locator('tr[data-model="claude-sonnet-4-6"]')
    expect(mapped).to_contain_text("eu.anthropic.claude-sonnet-4-6")
    expect(mapped).to_contain_text("admin")
    shot(page, "pricing-02-model-map")
    # /admin/model-map resolves each model with app/bedrock/models.py resolve_model, as fallbacks do
    described = ui_proxy.admin.get("/admin/model-map").json()["models"]
    assert {"anthropic_model": "claude-sonnet-4-6", "bedrock_model_id": "eu.anthropic.claude-sonnet-4-6",
            "source": "admin"} in described

    # remove both (confirm dialogs accepted), at 390 px without sideways scrolling
    page.set_viewport_size({"width": 390, "height": 844})
    page.on("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Remove the mapping of claude-sonnet-4-6").click()
    expect(page.locator(".notice")).to_contain_text("removed")
    page.get_by_role("link", name="Pricing").click()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot(page, "pricing-03-phone")
    page.get_by_role("button", name="Remove the override of claude-sonnet-4-6").click()
    expect(page.locator(".notice")).to_contain_text("Price override removed")
    expect(page.locator('tr[data-model="claude-sonnet-4-6"][data-source="admin"]')).to_have_count(0)
    assert console.unexpected() == []
    assert (ARTIFACTS / "pricing-03-phone.png").exists()
