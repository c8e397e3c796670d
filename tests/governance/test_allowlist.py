"""Model allow-lists: 403 permission_error before any upstream byte, the union of the groups'
lists narrowed by the key's, and GET /v1/models answering with the allowed models only."""

from __future__ import annotations

import pytest

from app.governance.allowlist import CATALOGUE, matches
from tests.governance.conftest import join, new_group
from tests.usage.conftest import CLIENT_CREDENTIAL, in_process_proxy


async def ask(proxy, key: str, model: str, *, in_path: bool = False):
    body = {"model": model, "max_tokens": 16, "messages": [{"role": "user", "content": "n=1"}]}
    if in_path:
        return await proxy.client.post(f"/ak/{key}/v1/messages", json=body, headers={"x-api-key": CLIENT_CREDENTIAL})
    return await proxy.client.post("/v1/messages", json=body, headers={"x-api-key": CLIENT_CREDENTIAL,
                                                                       "x-proxy-key": key})


@pytest.mark.parametrize(("entry", "model", "ok"), [
    ("claude-sonnet-4-5", "claude-sonnet-4-5-20250929", True),
    ("claude-sonnet-4-5", "claude-sonnet-4-5[1m]", True),
    ("claude-sonnet-4-5", "claude-sonnet-4-5-evil", False),
    ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5", False),
    ("claude-haiku-*", "claude-haiku-4-5-20251001", True),
    ("claude-haiku-*", "claude-opus-4-5", False),
])
def test_entries_match_dated_ids_and_globs(entry: str, model: str, ok: bool) -> None:
    assert matches(entry, model) is ok


async def test_a_model_outside_the_list_is_refused_before_any_upstream_call(monkeypatch: pytest.MonkeyPatch) -> None:
    async with in_process_proxy(monkeypatch) as proxy:
        user_id, _, key = await proxy.new_user_key()
        await new_group(proxy, "contractors", allowed_models=["claude-haiku-4-5"])
        await join(proxy, "contractors", user_id)
        for in_path in (False, True):
            response = await ask(proxy, key, "claude-opus-4-5-20251101", in_path=in_path)
            assert response.status_code == 403
            error = response.json()["error"]
            assert error["type"] == "permission_error"
            assert "claude-opus-4-5-20251101" in error["message"] and "claude-haiku-4-5" in error["message"]
            assert response.headers["x-should-retry"] == "false"
        assert proxy.upstream.requests == 0  # the fake Anthropic saw nothing
        assert (await ask(proxy, key, "claude-haiku-4-5-20251001")).status_code == 200


async def test_groups_union_narrowed_by_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    async with in_process_proxy(monkeypatch) as proxy:
        user_id, key_id, key = await proxy.new_user_key()
        await new_group(proxy, "a", allowed_models=["claude-haiku-4-5"])
        await new_group(proxy, "b", allowed_models=["claude-sonnet-4-5"])
        await new_group(proxy, "everyone")  # no list: restricts nothing, widens nothing
        for g in ("a", "b", "everyone"):
            await join(proxy, g, user_id)
        models = (await proxy.client.get("/v1/models", headers={"x-proxy-key": key})).json()
        assert [m["id"] for m in models["data"]] == ["claude-haiku-4-5", "claude-sonnet-4-5"]
        assert (await ask(proxy, key, "claude-opus-4-5")).status_code == 403
        put = await proxy.admin("PUT", f"/admin/access-keys/{key_id}/allowed-models",
                                json={"allowed_models": ["claude-sonnet-4-5", "claude-opus-4-5"]})
        assert put.status_code == 200
        assert (await ask(proxy, key, "claude-haiku-4-5")).status_code == 403  # narrowed by the key
        assert (await ask(proxy, key, "claude-opus-4-5")).status_code == 403  # the key cannot widen
        assert (await ask(proxy, key, "claude-sonnet-4-5")).status_code == 200
        models = (await proxy.client.get(f"/ak/{key}/v1/models")).json()
        assert [m["id"] for m in models["data"]] == ["claude-sonnet-4-5"]


async def test_models_list_shape_and_unrestricted_catalogue(monkeypatch: pytest.MonkeyPatch) -> None:
    async with in_process_proxy(monkeypatch) as proxy:
        _, _, key = await proxy.new_user_key()
        body = (await proxy.client.get("/v1/models", headers={"x-proxy-key": key})).json()
        assert [m["id"] for m in body["data"]] == [m["id"] for m in CATALOGUE]
        assert body["has_more"] is False and body["first_id"] == CATALOGUE[0]["id"]
        assert body["last_id"] == CATALOGUE[-1]["id"]
        sonnet = next(m for m in body["data"] if m["id"] == "claude-sonnet-4-5")
        assert sonnet == {"type": "model", "id": "claude-sonnet-4-5", "display_name": "Claude Sonnet 4.5",
                          "created_at": "2025-09-29T00:00:00Z"}
        page = (await proxy.client.get("/v1/models", params={"limit": 2}, headers={"x-proxy-key": key})).json()
        assert len(page["data"]) == 2 and page["has_more"] is True
        assert (await proxy.client.get("/v1/models")).status_code == 401


async def test_models_endpoint_makes_no_store_call(monkeypatch: pytest.MonkeyPatch) -> None:
    async with in_process_proxy(monkeypatch) as proxy:
        _, _, key = await proxy.new_user_key()
        await proxy.client.get("/v1/models", headers={"x-proxy-key": key})  # the key is cached now

        class NoStore:
            def __getattr__(self, name: str) -> None:
                raise AssertionError(f"store call {name}")

        proxy.services.governance.groups.repo = NoStore()
        proxy.services.access_keys._keys = NoStore()
        response = await proxy.client.get("/v1/models", headers={"x-proxy-key": key})
        assert response.status_code == 200
