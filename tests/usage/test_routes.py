"""Usage and limits over HTTP: the admin usage API, /v1/usage/me, PATCH limits (validated, audited,
effective at once) and the 429 they cause, and /metrics access control."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.usage.conftest import in_process_proxy, usage_for, usage_settings


def assert_error(response: object, status: int, error_type: str, fragment: str) -> None:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert body["type"] == "error" and body["error"]["type"] == error_type
    assert fragment in body["error"]["message"]


async def test_admin_usage_needs_the_admin_token_and_checks_parameters(monkeypatch: pytest.MonkeyPatch) -> None:
    async with in_process_proxy(monkeypatch) as proxy:
        assert_error(await proxy.client.get("/admin/usage"), 401, "authentication_error", "admin bearer token")
        for params, fragment in [({"granularity": "fortnight"}, "granularity: must be one of"),
                                 ({"tz": "Mars/Olympus"}, "tz: unknown time zone"),
                                 ({"from": "last tuesday"}, "from: not an ISO 8601"),
                                 ({"from": "2025-03-02", "to": "2025-03-01"}, "from: must be before to"),
                                 ({"granularity": "minute", "from": "2020-01-01"}, "minute buckets are kept")]:
            assert_error(await proxy.admin("GET", "/admin/usage", params=params), 400, "invalid_request_error",
                         fragment)
        for params, fragment in [({"metric": "latency"}, "metric: must be one of"), ({"limit": "0"}, "limit"),
                                 ({"limit": "many"}, "limit")]:
            assert_error(await proxy.admin("GET", "/admin/usage/top-users", params=params), 400,
                         "invalid_request_error", fragment)


async def test_admin_usage_and_top_users(monkeypatch: pytest.MonkeyPatch) -> None:
    async with in_process_proxy(monkeypatch) as proxy:
        _, ada_key_id, ada = await proxy.new_user_key("Ada")
        bo_id, _, bo = await proxy.new_user_key("Bo")
        for n in range(3):
            assert (await proxy.message(ada, n)).status_code == 200
        assert (await proxy.message(bo, 6, stream=True)).status_code == 200
        await proxy.services.recorder.flush()
        since = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
        report = (await proxy.admin("GET", "/admin/usage", params={"granularity": "minute", "from": since})).json()
        assert report["totals"]["requests"] == 4
        assert report["totals"]["input_tokens"] == sum(usage_for(n)["input_tokens"] for n in (0, 1, 2, 6))
        assert report["by_model"]["claude-sonnet-4-5-20250929"]["requests"] == 4
        assert report["totals"]["cost_usd_micros"] > 0 and report["totals"]["cost_unknown_requests"] == 0
        by_key = (await proxy.admin("GET", "/admin/usage", params={"access_key_id": ada_key_id})).json()
        assert by_key["totals"]["requests"] == 3 and by_key["scope"]["type"] == "access_key"
        top = (await proxy.admin("GET", "/admin/usage/top-users", params={"metric": "requests"})).json()
        assert [(u["name"], u["requests"]) for u in top["users"]] == [("Ada", 3), ("Bo", 1)]
        top = (await proxy.admin("GET", "/admin/usage/top-users", params={"metric": "tokens", "limit": 1})).json()
        assert [u["user_id"] for u in top["users"]] == [bo_id]  # request 6 reads 6000 cache tokens


async def test_key_holders_see_only_their_own_usage(monkeypatch: pytest.MonkeyPatch) -> None:
    async with in_process_proxy(monkeypatch) as proxy:
        ada_id, _, ada = await proxy.new_user_key("Ada")
        _, ada_second = await proxy.new_key(ada_id)
        _, _, bo = await proxy.new_user_key("Bo")
        await proxy.message(ada, 1)
        await proxy.message(ada_second, 2)
        await proxy.message(bo, 3)
        await proxy.services.recorder.flush()
        mine = await proxy.client.get("/v1/usage/me", headers={"x-proxy-key": ada})
        assert mine.status_code == 200
        assert mine.json()["usage"]["totals"]["requests"] == 1
        assert mine.json()["usage"]["totals"]["input_tokens"] == usage_for(1)["input_tokens"]
        all_mine = await proxy.client.get(f"/ak/{ada}/v1/usage/me", params={"scope": "user", "granularity": "day",
                                                                           "tz": "Asia/Seoul"})
        assert all_mine.json()["usage"]["totals"]["requests"] == 2
        assert all_mine.json()["usage"]["series"][-1]["start"].endswith("+09:00")
        assert_error(await proxy.client.get("/v1/usage/me", headers={"x-proxy-key": "sk-ccp-nope"}), 401,
                     "authentication_error", "invalid proxy access key")
        assert_error(await proxy.client.get("/v1/usage/me", headers={"x-proxy-key": ada}, params={"scope": "all"}),
                     400, "invalid_request_error", "scope")


async def test_patch_limits_validates_audits_and_applies_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    async with in_process_proxy(monkeypatch) as proxy:
        user_id, key_id, key = await proxy.new_user_key()
        # Half past a minute, near real time (mongomock enforces the counters' TTL against real time).
        clock_now = datetime.now(UTC).replace(second=30, microsecond=0)
        proxy.services.quotas.clock = lambda: clock_now
        assert (await proxy.message(key, 1)).status_code == 200  # the principal is now cached
        response = await proxy.admin("PATCH", f"/admin/access-keys/{key_id}",
                                     json={"limits": {"requests_per_minute": 2, "tokens_per_day": 10**9}})
        assert response.status_code == 200
        assert response.json()["limits"] == {"requests_per_minute": 2, "tokens_per_day": 10**9}
        assert [(await proxy.message(key, n)).status_code for n in range(2)] == [200, 200]
        refused = await proxy.message(key, 3)
        assert_error(refused, 429, "rate_limit_error", f"access key {key_id}: requests_per_minute limit reached")
        assert refused.headers["retry-after"] == "30"
        clock_now += timedelta(seconds=30)
        assert (await proxy.message(key, 4)).status_code == 200
        # A user's limit reaches keys that are already cached, and null clears one limit.
        await proxy.admin("PATCH", f"/admin/access-keys/{key_id}", json={"limits": {"requests_per_minute": None}})
        await proxy.admin("PATCH", f"/admin/users/{user_id}", json={"limits": {"requests_per_minute": 1}})
        assert (await proxy.message(key, 5)).status_code == 200
        assert_error(await proxy.message(key, 6), 429, "rate_limit_error", f"user {user_id}: requests_per_minute")
        user = (await proxy.admin("GET", f"/admin/users/{user_id}")).json()
        assert user["limits"] == {"requests_per_minute": 1}
        assert user["access_keys"][0]["limits"] == {"tokens_per_day": 10**9}
        actions = [e["action"] for e in await proxy.services.audit.list(limit=10)]
        assert actions[:3] == ["user.limits", "key.limits", "key.limits"]
        # Errors.
        for path, body, status, fragment in [
                (f"/admin/access-keys/{key_id}", {"limits": {"tokens_per_hour": 5}}, 400, "unknown field"),
                (f"/admin/access-keys/{key_id}", {"limits": {"tokens_per_day": -5}}, 400, "whole number >= 1"),
                (f"/admin/users/{user_id}", {"nmae": "x"}, 400, "nothing to update"),
                ("/admin/access-keys/ak_missing", {"limits": {}}, 404, "not found"),
                ("/admin/users/usr_missing", {"limits": None}, 404, "not found")]:
            response = await proxy.admin("PATCH", path, json=body)
            assert response.status_code == status, (path, body, response.text)
            assert fragment in response.json()["error"]["message"]
        assert (await proxy.admin("PATCH", f"/admin/users/{user_id}", json={"limits": None})).json()["limits"] == {}


async def test_metrics_from_loopback_and_with_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    async with in_process_proxy(monkeypatch) as proxy:
        _, _, key = await proxy.new_user_key()
        await proxy.message(key, 1, stream=True)
        await proxy.message(key, 2)
        text = (await proxy.client.get("/metrics")).text
        assert 'claude_proxy_requests_total{model="claude-sonnet-4-5",provider="anthropic",status="200"} 2.0' in text
        assert "claude_proxy_in_flight_streams 0.0" in text and "claude_proxy_in_flight_requests 0.0" in text
        assert "claude_proxy_time_to_first_token_seconds_count" in text
        assert "claude_proxy_usage_queue_depth" in text
    async with in_process_proxy(monkeypatch, client_host="10.1.2.3") as proxy:
        assert_error(await proxy.client.get("/metrics"), 403, "permission_error", "loopback")
    with_token = usage_settings(metrics_token="scrape-me")
    async with in_process_proxy(monkeypatch, with_token, client_host="10.1.2.3") as proxy:
        assert_error(await proxy.client.get("/metrics"), 401, "authentication_error", "PROXY_METRICS_TOKEN")
        ok = await proxy.client.get("/metrics", headers={"authorization": "Bearer scrape-me"})
        assert ok.status_code == 200 and ok.headers["content-type"].startswith("text/plain")
