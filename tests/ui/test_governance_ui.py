"""Dashboard pages of issue 14 section 5 for governance: ``/ui/groups``, ``/ui/spend-limits`` and
``/ui/alerts``, through plain forms (no JavaScript) and htmx fragments against the running app; the
writes are checked through the JSON API and the audit log (the same services answer both)."""

from __future__ import annotations

import re
import time
import uuid

import httpx

from app.ui.governance import bar_rows, cents, thresholds
from tests.conftest import CLIENT_API_KEY, RunningProxy
from tests.ui.conftest import UiClient


def new_user(admin: UiClient, name: str) -> str:
    response = admin.post("/ui/users", {"name": name, "email": f"{uuid.uuid4().hex[:8]}@example.com"})
    assert response.status_code == 303, response.text
    match = re.match(r"/ui/users/(usr_\w+)", response.headers["location"])
    assert match
    return match.group(1)


def new_group(admin: UiClient, name: str, **fields: str) -> str:
    response = admin.post("/ui/groups", {"name": name, **fields})
    assert response.status_code == 303, response.text
    match = re.match(r"/ui/groups/(grp_\w+)\?notice=group-created", response.headers["location"])
    assert match
    return match.group(1)


def audit_actions(ui_proxy: RunningProxy, action: str) -> list[dict]:
    return ui_proxy.admin.get("/admin/audit", params={"action": action}).json()["data"]


def test_pages_render_full_and_as_fragments_and_are_linked(admin: UiClient) -> None:
    for path, marker, fragment_marker in (("/ui/groups", "<h1>Groups</h1>", 'id="group-form"'),
                                          ("/ui/spend-limits", "<h1>Spend limits</h1>", 'id="limit-form"'),
                                          ("/ui/alerts", "<h1>Spend alerts</h1>", "")):
        page = admin.get(path)
        assert page.status_code == 200 and marker in page.text and "<html" in page.text
        assert f'<a href="{path}" aria-current="page">' in page.text
        assert page.headers["vary"] == "HX-Request"
        if fragment_marker:
            fragment = admin.get(path, htmx=True)
            assert fragment.status_code == 200 and "<html" not in fragment.text
            assert fragment_marker not in fragment.text and fragment_marker in page.text


def test_posts_need_the_csrf_token(admin: UiClient, ui_proxy: RunningProxy) -> None:
    group_id = new_group(admin, f"csrf-{uuid.uuid4().hex[:6]}")
    for path, form in (("/ui/groups", {"name": "nope"}), (f"/ui/groups/{group_id}/delete", {"confirm": "yes"}),
                       ("/ui/spend-limits", {"scope_type": "organization", "period": "daily", "amount_usd": "1"}),
                       ("/ui/alerts", {"spend_limit_id": "spl_x", "alert_thresholds": "50"})):
        assert admin.post(path, form, csrf=None).status_code == 403, path
        assert admin.post(path, form, csrf="forged").status_code == 403, path
    assert ui_proxy.admin.get(f"/admin/groups/{group_id}").status_code == 200
    assert all(g["name"] != "nope" for g in ui_proxy.admin.get("/admin/groups").json()["data"])


def test_group_create_rename_members_models_and_delete(admin: UiClient, ui_proxy: RunningProxy) -> None:
    name = f"contractors-{uuid.uuid4().hex[:6]}"
    group_id = new_group(admin, name, description="outside help", allowed_models="claude-sonnet-4-5")
    assert audit_actions(ui_proxy, "group.create")[0]["target_id"] == group_id
    listed = admin.get("/ui/groups")
    assert f'data-group="{group_id}"' in listed.text and name in listed.text
    renamed = admin.post(f"/ui/groups/{group_id}", {"name": name + "-x", "description": ""})
    assert renamed.status_code == 303 and "notice=group-saved" in renamed.headers["location"]
    api = ui_proxy.admin.get(f"/admin/groups/{group_id}").json()
    assert api["name"] == name + "-x" and api["description"] is None
    assert audit_actions(ui_proxy, "group.update")[0]["details"]["old_name"] == name
    models = admin.post(f"/ui/groups/{group_id}/models", {"allowed_models": "claude-haiku-4-5\nclaude-opus-4-1"})
    assert models.status_code == 303
    assert set(ui_proxy.admin.get(f"/admin/groups/{group_id}").json()["allowed_models"]) >= {"claude-haiku-4-5"}
    assert admin.post(f"/ui/groups/{group_id}/models", {"allowed_models": ""}).status_code == 303
    assert ui_proxy.admin.get(f"/admin/groups/{group_id}").json()["allowed_models"] is None

    user_id = new_user(admin, "Ana")
    page = admin.get(f"/ui/groups/{group_id}")
    assert f'<option value="{user_id}">' in page.text and f'data-member="{user_id}"' not in page.text
    added = admin.post(f"/ui/groups/{group_id}/members", {"user_id": user_id})
    assert added.status_code == 303
    assert [m["id"] for m in ui_proxy.admin.get(f"/admin/groups/{group_id}").json()["members"]] == [user_id]
    fragment = admin.get(f"/ui/groups/{group_id}", htmx=True)
    assert f'data-member="{user_id}"' in fragment.text and "<html" not in fragment.text
    removed = admin.post(f"/ui/groups/{group_id}/members/remove", {"user_id": user_id}, htmx=True)
    assert removed.status_code == 200 and f'data-member="{user_id}"' not in removed.text
    assert "Member removed." in removed.text and "<html" not in removed.text
    assert ui_proxy.admin.get(f"/admin/groups/{group_id}").json()["members"] == []

    assert admin.post(f"/ui/groups/{group_id}/delete", {}).status_code == 400  # the box must be ticked
    assert ui_proxy.admin.get(f"/admin/groups/{group_id}").status_code == 200
    deleted = admin.post(f"/ui/groups/{group_id}/delete", {"confirm": "yes"})
    assert deleted.status_code == 303 and deleted.headers["location"] == "/ui/groups?notice=group-deleted"
    assert ui_proxy.admin.get(f"/admin/groups/{group_id}").status_code == 404
    assert audit_actions(ui_proxy, "group.delete")[0]["target_id"] == group_id
    assert f'data-group="{group_id}"' not in admin.get("/ui/groups").text


def test_htmx_create_answers_the_rows_and_errors_are_alerts(admin: UiClient) -> None:
    name = f"htmx-{uuid.uuid4().hex[:6]}"
    created = admin.post("/ui/groups", {"name": name}, htmx=True)
    assert created.status_code == 200 and 'class="highlight"' in created.text and "<html" not in created.text
    again = admin.post("/ui/groups", {"name": name}, htmx=True)
    assert again.status_code == 400 and again.headers["hx-retarget"] == "#alerts" and "exists" in again.text


def test_script_names_are_rendered_as_text(admin: UiClient, ui_proxy: RunningProxy) -> None:
    evil = f"<script>alert({uuid.uuid4().hex[:4]})</script>"
    group_id = new_group(admin, evil[:100])
    user_id = new_user(admin, "<script>x()</script>")
    assert admin.post(f"/ui/groups/{group_id}/members", {"user_id": user_id}).status_code == 303
    assert admin.post("/ui/spend-limits", {"scope_type": "rbac_group", "group_id": group_id, "period": "weekly",
                                           "amount_usd": "40", "blocked_message": "<b>ask</b>"}).status_code == 303
    for path in ("/ui/groups", f"/ui/groups/{group_id}", "/ui/spend-limits", "/ui/alerts"):
        text = admin.get(path).text
        assert "<script>alert(" not in text and "<script>x()" not in text and "<b>ask</b>" not in text, path
        assert "&lt;script&gt;" in text, path
    assert admin.post(f"/ui/groups/{group_id}/delete", {"confirm": "yes"}).status_code == 303


def test_spend_limit_create_replace_delete_round_trip(admin: UiClient, ui_proxy: RunningProxy) -> None:
    group_id = new_group(admin, f"team-{uuid.uuid4().hex[:6]}")
    form = {"scope_type": "rbac_group_shared", "group_id": group_id, "period": "daily", "amount_usd": "100",
            "alert_thresholds": "50, 90", "blocked_message": "Ask #platform"}
    saved = admin.post("/ui/spend-limits", form)
    assert saved.status_code == 303
    limit_id = saved.headers["location"].split("#limit-")[1]
    api = ui_proxy.admin.get(f"/v1/organizations/spend_limits/{limit_id}").json()
    assert api["scope"] == {"type": "rbac_group_shared", "rbac_group_id": group_id} and api["amount"] == "10000"
    assert api["alert_thresholds"] == [50, 90] and api["blocked_message"] == "Ask #platform"
    replaced = admin.post("/ui/spend-limits", {**form, "amount_usd": "12.50", "alert_thresholds": ""})
    assert replaced.headers["location"].endswith(f"#limit-{limit_id}")  # same scope and period: same cap
    api = ui_proxy.admin.get(f"/v1/organizations/spend_limits/{limit_id}").json()
    assert api["amount"] == "1250" and api["alert_thresholds"] is None
    row = re.search(rf'<tr id="limit-{limit_id}".*?</tr>', admin.get("/ui/spend-limits").text, re.S)
    assert row and "$12.50" in row.group(0) and "shared team budget" in row.group(0)
    changes = ui_proxy.admin.get("/v1/organizations/spend_limits/audit", params={"spend_limit_id": limit_id}).json()
    assert [c["action"] for c in changes["data"]] == ["updated", "created"]
    assert changes["data"][0]["actor"] == {"type": "user_actor", "username": "admin"}
    bad = admin.post("/ui/spend-limits", {**form, "amount_usd": "1.005"})
    assert bad.status_code == 400 and "two decimals" in bad.text
    deleted = admin.post("/ui/spend-limits/delete", {"spend_limit_id": limit_id})
    assert deleted.status_code == 303 and "notice=limit-deleted" in deleted.headers["location"]
    assert ui_proxy.admin.get(f"/v1/organizations/spend_limits/{limit_id}").status_code == 404
    assert f'id="limit-{limit_id}"' not in admin.get("/ui/spend-limits").text
    assert audit_actions(ui_proxy, "spend_limit.deleted")[0]["target_id"] == limit_id


def test_form_parsers() -> None:
    assert cents("500") == "50000" and cents("$1,234.5") == "123450" and cents(" ") is None
    assert thresholds("50, 80 100%") == [50, 80, 100] and thresholds("") is None
    row = {"period_to_date_spend": "125", "amount": "1000"}
    rows = bar_rows([{**row, "percent_used": 79.99, "blocked": False}, {**row, "percent_used": 80, "blocked": False},
                     {**row, "percent_used": 250.0, "blocked": True}])
    assert [r["state"] for r in rows] == ["ok", "near", "over"] and rows[2]["bar"] == 100.0
    assert rows[0]["spend_usd"] == 1.25 and rows[0]["cap_usd"] == 10.0


def test_spend_bars_show_who_is_over_and_the_alerts_fired(admin: UiClient, ui_proxy: RunningProxy) -> None:
    user_id = new_user(admin, "Spender")
    key = ui_proxy.admin.post(f"/admin/users/{user_id}/access-keys", json={}).json()["key"]
    saved = admin.post("/ui/spend-limits", {"scope_type": "user", "user_id": user_id, "period": "monthly",
                                            "amount_usd": "0.01"})
    assert saved.status_code == 303
    limit_id = saved.headers["location"].split("#limit-")[1]
    for _ in range(50):
        reply = httpx.post(f"{ui_proxy.url}/v1/messages", headers={"x-api-key": CLIENT_API_KEY, "x-proxy-key": key},
                           json={"model": "claude-sonnet-4-5", "max_tokens": 5,
                                 "messages": [{"role": "user", "content": "hi"}]})
        if reply.status_code == 429:
            break
    assert reply.status_code == 429 and reply.json()["error"]["type"] == "billing_error"
    deadline = time.monotonic() + 15  # usage is written and alerts are checked in the background
    while True:
        fragment = admin.get("/ui/spend-limits", params={"q": user_id}, htmx=True).text
        alerts = admin.get("/ui/alerts").text
        row = re.search(rf'<tr data-user="{user_id}" data-period="monthly" data-state="(\w+)"', fragment)
        if row and row.group(1) == "over" and f'data-alert="{limit_id}"' in alerts:
            break
        assert time.monotonic() < deadline, (fragment, alerts)
        time.sleep(0.2)
    assert "<html" not in fragment and 'class="bar spend-over"' in fragment and "at or over 80%" in fragment
    assert re.search(rf'<tr id="alert-{limit_id}".*?value="80, 100"', alerts, re.S)
    assert ">100%<" in alerts and ">80%<" in alerts
    changed = admin.post("/ui/alerts", {"spend_limit_id": limit_id, "alert_thresholds": "50, 75"})
    assert changed.status_code == 303 and "notice=thresholds-saved" in changed.headers["location"]
    api = ui_proxy.admin.get(f"/v1/organizations/spend_limits/{limit_id}").json()
    assert api["alert_thresholds"] == [50, 75] and api["amount"] == "1" and api["period"] == "monthly"
    assert admin.post("/ui/alerts", {"spend_limit_id": limit_id, "alert_thresholds": "lots"}).status_code == 400
    assert admin.post("/ui/spend-limits/delete", {"spend_limit_id": limit_id}).status_code == 303
