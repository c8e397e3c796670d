"""Governance tests drive the real app in process (tests/usage/conftest.py ``in_process_proxy``)."""

from __future__ import annotations

from typing import Any

from tests.usage.conftest import InProcessProxy

SPEND = "/v1/organizations/spend_limits"


async def new_group(proxy: InProcessProxy, name: str, **fields: Any) -> dict[str, Any]:
    response = await proxy.admin("POST", "/admin/groups", json={"name": name, **fields})
    assert response.status_code == 201, response.text
    return response.json()


async def join(proxy: InProcessProxy, group: str, user_id: str) -> None:
    response = await proxy.admin("POST", f"/admin/groups/{group}/members", json={"user_id": user_id})
    assert response.status_code == 200, response.text


async def set_cap(proxy: InProcessProxy, scope: dict[str, Any], amount: str | None, period: str,
                  **extra: Any) -> dict[str, Any]:
    response = await proxy.admin("POST", SPEND, json={"scope": scope, "amount": amount, "period": period, **extra})
    assert response.status_code == 200, response.text
    return response.json()
