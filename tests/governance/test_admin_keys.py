"""Admin API keys: read-only keys read and are refused on writes, read-write keys write, every
action shows the key's id in the audit log, revoked keys stop at once."""

from __future__ import annotations

import pytest

from tests.governance.conftest import SPEND
from tests.usage.conftest import in_process_proxy


async def test_read_only_and_read_write_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    async with in_process_proxy(monkeypatch) as proxy:
        ro = (await proxy.admin("POST", "/admin/api-keys", json={"name": "dashboards", "access": "read_only"})).json()
        rw = (await proxy.admin("POST", "/admin/api-keys", json={"name": "terraform", "access": "read_write"})).json()
        assert ro["key"].startswith("sk-ccp-admin01-") and ro["type"] == "admin_api_key"
        body = {"scope": {"type": "organization"}, "amount": "50000", "period": "monthly"}

        refused = await proxy.client.post(SPEND, json=body, headers={"x-api-key": ro["key"]})
        assert refused.status_code == 403 and refused.json()["error"]["type"] == "permission_error"
        assert (await proxy.client.get(SPEND, headers={"x-api-key": ro["key"]})).status_code == 200
        assert (await proxy.client.get("/admin/users", headers={"x-api-key": ro["key"]})).status_code == 200
        assert (await proxy.client.post("/admin/users", json={"name": "x"},
                                        headers={"x-api-key": ro["key"]})).status_code == 403

        created = await proxy.client.post(SPEND, json=body, headers={"x-api-key": rw["key"]})
        assert created.status_code == 200
        audit = (await proxy.admin("GET", f"{SPEND}/audit")).json()["data"]
        assert audit[0]["actor"] == {"type": "admin_api_key_actor", "admin_api_key_id": rw["id"]}
        log = (await proxy.admin("GET", "/admin/audit", params={"action": "spend_limit.*"})).json()["data"]
        assert log[0]["actor"] == f"admin_api_key:{rw['id']}"

        assert (await proxy.admin("DELETE", f"/admin/api-keys/{rw['id']}")).status_code == 200
        gone = await proxy.client.get(SPEND, headers={"x-api-key": rw["key"]})
        assert gone.status_code == 401 and gone.json()["error"]["type"] == "authentication_error"
        listed = (await proxy.admin("GET", "/admin/api-keys")).json()
        assert {k["id"]: k["status"] for k in listed["data"]} == {ro["id"]: "active", rw["id"]: "revoked"}
        assert all("key" not in k and "key_hash" not in k for k in listed["data"])


async def test_a_wrong_key_is_401(monkeypatch: pytest.MonkeyPatch) -> None:
    async with in_process_proxy(monkeypatch) as proxy:
        for key in ("nope", "sk-ccp-admin01-" + "x" * 43):
            response = await proxy.client.get(SPEND, headers={"x-api-key": key})
            assert response.status_code == 401 and response.headers["request-id"].startswith("req_")
