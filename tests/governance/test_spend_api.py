"""The spend limits API in the Admin API's shapes: the reference's own examples replayed, paging,
replace-not-duplicate, delete, effective report, audit rows, request-id and the error envelope."""

from __future__ import annotations

import re

import pytest

from tests.governance.conftest import SPEND, join, new_group, set_cap
from tests.usage.conftest import in_process_proxy


async def test_reference_examples_org_default_and_contractors_daily(monkeypatch: pytest.MonkeyPatch) -> None:
    async with in_process_proxy(monkeypatch) as proxy:
        group = await new_group(proxy, "contractors")
        org = await set_cap(proxy, {"type": "organization"}, "50000", "monthly")
        contractors = await set_cap(proxy, {"type": "rbac_group", "rbac_group_id": "contractors"}, "10000", "daily")
        assert re.fullmatch(r"spl_[0-9a-f]{24}", org["id"])
        assert org == {**org, "type": "spend_limit", "scope": {"type": "organization"}, "amount": "50000",
                       "currency": "USD", "period": "monthly", "is_enabled": True}
        assert contractors["scope"] == {"type": "rbac_group", "rbac_group_id": group["id"]}
        assert org["created_at"].endswith("Z")

        # Resolution as the reference describes: the contractor gets $100/day and the org's $500/month.
        contractor, _, _ = await proxy.new_user_key("Con")
        employee, _, _ = await proxy.new_user_key("Emp")
        await join(proxy, "contractors", contractor)
        rows = (await proxy.admin("GET", f"{SPEND}/effective")).json()["data"]
        by = {(r["actor"]["user_id"], r["period"]): r for r in rows}
        assert by[(contractor, "daily")]["amount"] == "10000"
        assert by[(contractor, "daily")]["source"] == {"type": "rbac_group", "rbac_group_id": group["id"]}
        assert by[(contractor, "monthly")]["amount"] == "50000"
        assert by[(employee, "monthly")]["source"] == {"type": "organization"}
        assert (employee, "daily") not in by
        assert all(r["type"] == "spend_summary" and r["period_to_date_spend"] == "0" for r in rows)


async def test_post_replaces_the_cap_of_a_scope_and_period(monkeypatch: pytest.MonkeyPatch) -> None:
    async with in_process_proxy(monkeypatch) as proxy:
        first = await set_cap(proxy, {"type": "organization"}, "50000", "monthly")
        second = await set_cap(proxy, {"type": "organization"}, "70000", "monthly")
        assert second["id"] == first["id"] and second["amount"] == "70000"
        listed = (await proxy.admin("GET", SPEND)).json()
        assert [x["id"] for x in listed["data"]] == [first["id"]]
        audit = (await proxy.admin("GET", f"{SPEND}/audit")).json()["data"]
        assert [a["action"] for a in audit] == ["updated", "created"]
        assert audit[0]["before"]["amount"] == "50000" and audit[0]["after"]["amount"] == "70000"
        assert audit[0]["actor"] == {"type": "user_actor", "username": "admin"}


async def test_list_pages_with_after_and_before_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    async with in_process_proxy(monkeypatch) as proxy:
        ids = [(await set_cap(proxy, {"type": "organization"}, "100", p))["id"] for p in ("daily", "weekly", "monthly")]
        page = (await proxy.admin("GET", SPEND, params={"limit": 2})).json()
        assert [x["id"] for x in page["data"]] == ids[:2]
        assert page["has_more"] is True and page["first_id"] == ids[0] and page["last_id"] == ids[1]
        rest = (await proxy.admin("GET", SPEND, params={"limit": 2, "after_id": page["last_id"]})).json()
        assert [x["id"] for x in rest["data"]] == ids[2:] and rest["has_more"] is False
        back = (await proxy.admin("GET", SPEND, params={"limit": 1, "before_id": ids[2]})).json()
        assert [x["id"] for x in back["data"]] == [ids[1]] and back["has_more"] is True


async def test_get_and_delete(monkeypatch: pytest.MonkeyPatch) -> None:
    async with in_process_proxy(monkeypatch) as proxy:
        cap = await set_cap(proxy, {"type": "organization"}, "100", "daily")
        assert (await proxy.admin("GET", f"{SPEND}/{cap['id']}")).json() == cap
        deleted = await proxy.admin("DELETE", f"{SPEND}/{cap['id']}")
        assert deleted.json() == {"type": "spend_limit_deleted", "id": cap["id"]}
        missing = await proxy.admin("GET", f"{SPEND}/{cap['id']}")
        assert missing.status_code == 404
        body = missing.json()
        assert body["type"] == "error" and body["error"]["type"] == "not_found_error"
        assert body["request_id"] == missing.headers["request-id"] and body["request_id"].startswith("req_")
        audit = (await proxy.admin("GET", f"{SPEND}/audit")).json()["data"]
        assert audit[0]["action"] == "deleted" and audit[0]["after"] is None


@pytest.mark.parametrize(("body", "field"), [
    ({"scope": {"type": "organization"}, "amount": "12.50", "period": "daily"}, "amount"),
    ({"scope": {"type": "organization"}, "amount": 500, "period": "daily"}, "amount"),
    ({"scope": {"type": "organization"}, "amount": "500", "period": "yearly"}, "period"),
    ({"scope": {"type": "team"}, "amount": "500", "period": "daily"}, "scope.type"),
    ({"scope": {"type": "organization"}, "period": "daily"}, "amount"),
])
async def test_bad_bodies_are_invalid_request_errors(monkeypatch: pytest.MonkeyPatch, body: dict, field: str) -> None:
    async with in_process_proxy(monkeypatch) as proxy:
        response = await proxy.admin("POST", SPEND, json=body)
        assert response.status_code == 400
        assert response.json()["error"]["type"] == "invalid_request_error"
        assert response.json()["error"]["message"].startswith(field)
        assert response.json()["request_id"] == response.headers["request-id"]


async def test_unknown_group_and_user_are_404(monkeypatch: pytest.MonkeyPatch) -> None:
    async with in_process_proxy(monkeypatch) as proxy:
        for scope in ({"type": "rbac_group", "rbac_group_id": "nobody"}, {"type": "user", "user_id": "usr_x"}):
            response = await proxy.admin("POST", SPEND, json={"scope": scope, "amount": "1", "period": "daily"})
            assert response.status_code == 404


async def test_every_admin_response_has_a_request_id(monkeypatch: pytest.MonkeyPatch) -> None:
    async with in_process_proxy(monkeypatch) as proxy:
        for path in (SPEND, "/admin/users", "/admin/groups"):
            response = await proxy.admin("GET", path)
            assert response.status_code == 200 and response.headers["request-id"].startswith("req_")
        unauthenticated = await proxy.client.get(SPEND)
        assert unauthenticated.status_code == 401
        assert unauthenticated.json()["request_id"] == unauthenticated.headers["request-id"]


async def test_effective_sorts_by_spend_and_filters_by_q(monkeypatch: pytest.MonkeyPatch) -> None:
    async with in_process_proxy(monkeypatch) as proxy:
        await set_cap(proxy, {"type": "organization"}, "50000", "monthly")
        low, _, low_key = await proxy.new_user_key("Low")
        high, _, high_key = await proxy.new_user_key("High")
        assert (await proxy.message(low_key, 1)).status_code == 200
        for n in range(2, 6):
            assert (await proxy.message(high_key, n)).status_code == 200
        await proxy.services.recorder.flush()
        rows = (await proxy.admin("GET", f"{SPEND}/effective", params={"sort": "spend_desc"})).json()["data"]
        rows = [r for r in rows if r["actor"]["user_id"] in (high, low)]  # the demo user has a row too
        assert [r["actor"]["user_id"] for r in rows] == [high, low]
        assert int(rows[0]["period_to_date_spend"]) >= int(rows[1]["period_to_date_spend"]) > 0
        only = (await proxy.admin("GET", f"{SPEND}/effective", params={"q": "low"})).json()["data"]
        assert [r["actor"]["user_id"] for r in only] == [low]
        paged = (await proxy.admin("GET", f"{SPEND}/effective", params={"limit": 1, "sort": "spend_desc"})).json()
        assert paged["has_more"] is True and paged["last_id"] == high
