"""Groups: create, rename, delete (members and caps cleaned up), audited; SSO's mapped group names
become the proxy's group ids."""

from __future__ import annotations

import pytest

from tests.governance.conftest import SPEND, join, new_group, set_cap
from tests.usage.conftest import in_process_proxy


async def test_group_lifecycle(monkeypatch: pytest.MonkeyPatch) -> None:
    async with in_process_proxy(monkeypatch) as proxy:
        group = await new_group(proxy, "contractors", description="outside help")
        assert group["type"] == "rbac_group" and group["id"].startswith("grp_")
        dup = await proxy.admin("POST", "/admin/groups", json={"name": "contractors"})
        assert dup.status_code == 400
        user_id, _, _ = await proxy.new_user_key()
        await join(proxy, "contractors", user_id)
        renamed = await proxy.admin("PATCH", f"/admin/groups/{group['id']}", json={"name": "vendors"})
        assert renamed.json()["name"] == "vendors"
        got = (await proxy.admin("GET", "/admin/groups/vendors")).json()
        assert got["member_count"] == 1 and got["members"][0]["id"] == user_id
        assert (await proxy.admin("GET", f"/admin/users/{user_id}")).json()["groups"] == [group["id"]]
        cap = await set_cap(proxy, {"type": "rbac_group", "rbac_group_id": "vendors"}, "100", "daily")
        deleted = await proxy.admin("DELETE", "/admin/groups/vendors")
        assert deleted.json() == {"type": "rbac_group_deleted", "id": group["id"]}
        assert (await proxy.admin("GET", f"/admin/users/{user_id}")).json()["groups"] == []
        assert (await proxy.admin("GET", f"{SPEND}/{cap['id']}")).status_code == 404
        actions = [e["action"] for e in (await proxy.admin("GET", "/admin/audit",
                                                            params={"action": "group.*"})).json()["data"]]
        assert actions == ["group.delete", "group.update", "group.member.add", "group.create"]


async def test_set_user_groups_by_name_and_sso_mapping(monkeypatch: pytest.MonkeyPatch) -> None:
    async with in_process_proxy(monkeypatch) as proxy:
        a = await new_group(proxy, "eng")
        b = await new_group(proxy, "ml")
        user_id, _, _ = await proxy.new_user_key()
        response = await proxy.admin("PUT", f"/admin/users/{user_id}/groups", json={"groups": ["ml", a["id"]]})
        assert response.json()["groups"] == [b["id"], a["id"]]
        assert (await proxy.admin("PUT", f"/admin/users/{user_id}/groups",
                                  json={"groups": ["nope"]})).status_code == 404
        groups = proxy.services.governance.groups
        assert await groups.ids_for(["ml", "unknown-idp-group", a["id"], "ml"]) == [b["id"], a["id"]]


async def test_group_name_may_not_look_like_an_id(monkeypatch: pytest.MonkeyPatch) -> None:
    async with in_process_proxy(monkeypatch) as proxy:
        response = await proxy.admin("POST", "/admin/groups", json={"name": "grp_123"})
        assert response.status_code == 400
