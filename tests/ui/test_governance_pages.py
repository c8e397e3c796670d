"""Dashboard pages of issue 14 sections 1, 4 and 5: pricing, model map, user edit/delete/import,
key expiry, top sessions and the usage CSV, through plain forms (no JavaScript) against the
running app."""

from __future__ import annotations

import asyncio
import csv
import io
import re
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx

from tests.conftest import CLIENT_API_KEY, RunningProxy
from tests.ui.conftest import UiClient


def new_user(admin: UiClient, name: str = "Lin", email: str | None = None) -> str:
    email = email or f"{name.lower()}-{uuid.uuid4().hex[:8]}@example.com"
    response = admin.post("/ui/users", {"name": name, "email": email})
    assert response.status_code == 303, response.text
    match = re.match(r"/ui/users/(usr_\w+)", response.headers["location"])
    assert match
    return match.group(1)


def test_pricing_page_lists_sources_and_an_override_is_saved_audited_and_removed(
        admin: UiClient, ui_proxy: RunningProxy) -> None:
    page = admin.get("/ui/pricing")
    assert page.status_code == 200 and 'data-model="claude-opus-5-5" data-source="derived-tier"' in page.text
    assert "$5 / $25" in page.text.replace("$5.0 / $25.0", "$5 / $25")
    saved = admin.post("/ui/pricing", {"model": "us.anthropic.claude-haiku-4-5-20251001-v1:0", "provider": "bedrock",
                                       "input": "0.9", "output": "4.5"})
    assert saved.status_code == 303 and saved.headers["location"].startswith("/ui/pricing?notice=price-set")
    page = admin.get("/ui/pricing")
    row = re.search(r'<tr id="price-bedrock:claude-haiku-4-5" data-model="bedrock:claude-haiku-4-5" '
                    r'data-source="admin">.*?</tr>', page.text, re.S)
    assert row and ">0.9<" in row.group(0) and ">4.5<" in row.group(0)
    api = ui_proxy.admin.get("/admin/pricing/bedrock:claude-haiku-4-5").json()
    assert api["rows"][0]["source"] == "admin" or any(r["source"] == "admin" for r in api["rows"])
    audit = ui_proxy.admin.get("/admin/audit", params={"action": "pricing.set"}).json()["data"]
    assert audit[0]["target_id"] == "bedrock:claude-haiku-4-5" and audit[0]["details"]["after"]["input"] == "0.9"
    removed = admin.post("/ui/pricing/remove", {"model": "bedrock:claude-haiku-4-5"})
    assert removed.status_code == 303
    assert 'data-model="bedrock:claude-haiku-4-5"' not in admin.get("/ui/pricing").text


def test_a_bad_rate_is_a_readable_error_not_a_trace(admin: UiClient) -> None:
    response = admin.post("/ui/pricing", {"model": "claude-new-thing", "input": "2"})
    assert response.status_code == 400 and "input" in response.text and "output" in response.text
    response = admin.post("/ui/pricing", {"model": "claude-opus-4-6", "input": "-1"})
    assert response.status_code == 400 and "rates must be" in response.text


def test_model_map_page_edits_a_mapping(admin: UiClient, ui_proxy: RunningProxy) -> None:
    page = admin.get("/ui/model-map")
    assert page.status_code == 200 and 'data-model="claude-opus-5-5"' in page.text
    saved = admin.post("/ui/model-map", {"anthropic_model": "claude-opus-5-5",
                                         "bedrock_model_id": "eu.anthropic.claude-opus-5-5"})
    assert saved.status_code == 303
    described = ui_proxy.admin.get("/admin/model-map").json()["models"]
    assert {"anthropic_model": "claude-opus-5-5", "bedrock_model_id": "eu.anthropic.claude-opus-5-5",
            "source": "admin"} in described
    assert admin.post("/ui/model-map/remove", {"anthropic_model": "claude-opus-5-5"}).status_code == 303
    assert admin.post("/ui/model-map", {"anthropic_model": "claude x", "bedrock_model_id": "y"}).status_code == 400


def test_edit_then_delete_a_user_keeps_usage_under_a_pseudonym(admin: UiClient, ui_proxy: RunningProxy) -> None:
    user_id = new_user(admin, "Mei")
    key = ui_proxy.admin.post(f"/admin/users/{user_id}/access-keys", json={}).json()
    taken = ui_proxy.admin.get(f"/admin/users/{ui_proxy.user_id}").json()["email"]
    clash = admin.post(f"/ui/users/{user_id}/profile", {"name": "Mei", "email": taken.upper()})
    assert clash.status_code == 400 and "already belongs to another user" in clash.text
    assert admin.post(f"/ui/users/{user_id}/profile", {"name": "Mei Chen", "email": ""}).status_code == 303
    user = ui_proxy.admin.get(f"/admin/users/{user_id}").json()
    assert user["name"] == "Mei Chen" and user["email"] is None
    reply = httpx.post(f"{ui_proxy.url}/v1/messages", headers={"x-api-key": CLIENT_API_KEY, "x-proxy-key": key["key"]},
                       json={"model": "claude-sonnet-4-5", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]})
    assert reply.status_code == 200
    assert admin.post(f"/ui/users/{user_id}/delete", {}).status_code == 400  # the box must be ticked
    assert admin.post(f"/ui/users/{user_id}/delete", {"confirm": "yes"}).status_code == 303
    user = ui_proxy.admin.get(f"/admin/users/{user_id}").json()
    assert user["status"] == "deleted" and user["name"].startswith("deleted:") and user["email"] is None
    assert {k["state"] for k in user["access_keys"]} == {"revoked"}
    refused = httpx.post(f"{ui_proxy.url}/v1/messages", headers={"x-api-key": CLIENT_API_KEY, "x-proxy-key": key["key"]},
                         json={"model": "claude-sonnet-4-5", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]})
    assert refused.status_code == 401
    csv_text = _export(admin, ui_proxy)
    rows = [r for r in csv.DictReader(io.StringIO(csv_text)) if r["user_id"] == user_id]
    assert rows and rows[0]["user_name"] == user["name"] and rows[0]["user_email"] == ""


def _export(admin: UiClient, ui_proxy: RunningProxy) -> str:
    for _ in range(200):  # the recorder writes within its flush interval (1 s); wait for it, not a clock
        if ui_proxy.services.recorder.depth == 0 and ui_proxy.services.recorder.written:
            break
        time.sleep(0.05)
    response = admin.get("/ui/usage/export.csv")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    return response.text


def test_import_users_from_a_csv_file_skips_known_e_mails(admin: UiClient) -> None:
    email = f"ines-{uuid.uuid4().hex[:6]}@example.com"
    body = f"name,email\nInes,{email}\nJoao,\n"
    files = {"csv_file": ("people.csv", body.encode(), "text/csv")}
    response = admin.http.post("/ui/users/import", data={"csrf_token": admin.csrf or ""}, files=files)
    assert response.status_code == 200 and "Created 2, skipped 0" in response.text
    again = admin.post("/ui/users/import", {"csv_text": body, "dry_run": "yes"})
    assert again.status_code == 200 and "Would create 1, skipped 1" in again.text
    bad = admin.post("/ui/users/import", {"csv_text": "email\nx@example.com\n"})
    assert bad.status_code == 400 and "name" in bad.text


def test_key_expiry_is_set_shown_and_refuses_the_key(admin: UiClient, ui_proxy: RunningProxy) -> None:
    user_id = new_user(admin, "Oren")
    key = ui_proxy.admin.post(f"/admin/users/{user_id}/access-keys", json={}).json()
    past = admin.post(f"/ui/keys/{key['id']}/expiry", {"expires_at": "2001-01-01T00:00"})
    assert past.status_code == 400 and "future" in past.text
    soon = (datetime.now(UTC) + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M")
    saved = admin.post(f"/ui/keys/{key['id']}/expiry", {"expires_at": soon})
    assert saved.status_code == 303 and saved.headers["location"] == f"/ui/users/{user_id}?notice=expiry-set#keys"
    page = admin.get(f"/ui/users/{user_id}")
    assert "expires " + soon.replace("T", " ") in page.text
    # Through the API: an expiry in the past is refused; rotation shows "rotated", not "revoked".
    rotated = ui_proxy.admin.post(f"/admin/access-keys/{key['id']}/rotate").json()
    keys = {k["id"]: k["state"] for k in ui_proxy.admin.get(f"/admin/users/{user_id}").json()["access_keys"]}
    assert keys == {key["id"]: "rotated", rotated["id"]: "active"}
    assert '<span class="badge rotated">rotated</span>' in admin.get(f"/ui/users/{user_id}").text


def test_top_sessions_split_main_agent_and_subagents(admin: UiClient, ui_proxy: RunningProxy) -> None:
    user_id = new_user(admin, "Pia")
    key = ui_proxy.admin.post(f"/admin/users/{user_id}/access-keys", json={}).json()
    db = ui_proxy.services.store.db
    now = datetime.now(UTC)
    events = [("s-1", None, 3_000_000), ("s-1", "main", 1_000_000), ("s-2", None, 500_000)]
    async def insert() -> None:
        await db["usage_events"].insert_many([
            {"_id": uuid.uuid4().hex, "user_id": user_id, "access_key_id": key["id"], "provider": "anthropic",
             "model": "claude-opus-4-6", "session_id": session, "agent_id": "a1" if parent else None,
             "parent_agent_id": parent, "cost_usd_micros": cost, "input_tokens": 10, "output_tokens": 5,
             "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "time": now - timedelta(minutes=5)}
            for session, parent, cost in events])

    asyncio.run(insert())  # the embedded store is shared with the app (as in test_session_revocation)
    fragment = admin.get(f"/ui/users/{user_id}/sessions", htmx=True)
    assert fragment.status_code == 200 and "<html" not in fragment.text
    order = re.findall(r'data-session="([^"]+)"', fragment.text)
    assert order == ["s-1", "s-2"]
    assert "subagents $1.00 (25.0%)" in fragment.text
    api = ui_proxy.admin.get(f"/admin/users/{user_id}/sessions").json()["sessions"]
    assert api[0]["session_id"] == "s-1" and api[0]["subagent_share"] == 0.25 and api[0]["agents"] == 1
