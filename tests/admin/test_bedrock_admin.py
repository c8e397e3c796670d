"""Admin JSON API for Bedrock: per-key Bedrock API keys (write-only, envelope-encrypted, bound to
their access key), fallback policy, and the model map."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from app.crypto.envelope import bedrock_key_context
from tests.conftest import RunningProxy

BEDROCK_KEY = "ABSKQmVkcm9ja0FQSUtleS1leGFtcGxlLWZvci10ZXN0cw=="


def _run(proxy: RunningProxy, coro: Any) -> Any:
    """Run a coroutine on a fresh loop against the proxy's store (mongomock: thread-safe enough)."""
    return asyncio.run(coro)


def _key_doc(proxy: RunningProxy, key_id: str) -> dict[str, Any]:
    return _run(proxy, proxy.services.access_keys.get(key_id))


def test_bedrock_key_is_write_only_and_encrypted_at_rest(proxy: RunningProxy) -> None:
    response = proxy.admin.post(f"/admin/access-keys/{proxy.key_id}/bedrock-key", json={"api_key": BEDROCK_KEY})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["has_bedrock_key"] is True and body["bedrock_key_set_at"]
    assert BEDROCK_KEY not in response.text
    user = proxy.admin.get(f"/admin/users/{proxy.user_id}")
    assert BEDROCK_KEY not in user.text

    doc = _key_doc(proxy, proxy.key_id)
    assert BEDROCK_KEY not in json.dumps(doc, default=str)
    envelope = doc["bedrock_key"]
    assert envelope["kek"] == "local"
    plaintext = _run(proxy, proxy.services.cipher.decrypt(envelope, bedrock_key_context(proxy.key_id)))
    assert plaintext.decode() == BEDROCK_KEY


def test_bedrock_key_replace_delete_and_audit(proxy: RunningProxy) -> None:
    url = f"/admin/access-keys/{proxy.key_id}/bedrock-key"
    assert proxy.admin.post(url, json={"api_key": BEDROCK_KEY}).status_code == 200
    assert proxy.admin.post(url, json={"api_key": BEDROCK_KEY + "x"}).status_code == 200
    doc = _key_doc(proxy, proxy.key_id)
    plaintext = _run(proxy, proxy.services.cipher.decrypt(doc["bedrock_key"], bedrock_key_context(proxy.key_id)))
    assert plaintext.decode() == BEDROCK_KEY + "x"

    deleted = proxy.admin.delete(url)
    assert deleted.status_code == 200 and deleted.json()["has_bedrock_key"] is False
    assert "bedrock_key" not in _key_doc(proxy, proxy.key_id)

    actions = [entry["action"] for entry in _run(proxy, proxy.services.audit.list(limit=20))]
    assert actions.count("key.bedrock_key.set") == 2 and "key.bedrock_key.delete" in actions
    entries = _run(proxy, proxy.services.audit.list(limit=20))
    assert BEDROCK_KEY not in json.dumps(entries, default=str)


def test_bedrock_key_bad_input_and_unknown_key(proxy: RunningProxy) -> None:
    bad = proxy.admin.post(f"/admin/access-keys/{proxy.key_id}/bedrock-key", json={"api_key": "has space"})
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request_error"
    missing = proxy.admin.post("/admin/access-keys/ak_nope/bedrock-key", json={"api_key": BEDROCK_KEY})
    assert missing.status_code == 404 and missing.json()["type"] == "error"
    assert proxy.admin.post(f"/admin/access-keys/{proxy.key_id}/bedrock-key", json={}).status_code == 400


def test_rotate_reseals_the_bedrock_key_for_the_new_access_key(proxy: RunningProxy) -> None:
    proxy.admin.post(f"/admin/access-keys/{proxy.key_id}/bedrock-key", json={"api_key": BEDROCK_KEY})
    rotated = proxy.admin.post(f"/admin/access-keys/{proxy.key_id}/rotate").json()
    assert rotated["has_bedrock_key"] is True
    doc = _key_doc(proxy, rotated["id"])
    plaintext = _run(proxy, proxy.services.cipher.decrypt(doc["bedrock_key"], bedrock_key_context(rotated["id"])))
    assert plaintext.decode() == BEDROCK_KEY


def test_patch_fallback_policy(proxy: RunningProxy) -> None:
    url = f"/admin/access-keys/{proxy.key_id}"
    assert proxy.admin.patch(url, json={"fallback_policy": "bedrock_only"}).json()["fallback_policy"] == "bedrock_only"
    bad = proxy.admin.patch(url, json={"fallback_policy": "sometimes"})
    assert bad.status_code == 400 and "fallback_policy" in bad.json()["error"]["message"]
    assert proxy.admin.patch(url, json={"fallback_policy": None}).json()["fallback_policy"] is None
    assert proxy.admin.patch(url, json={}).status_code == 400


def test_model_map_describe_override_and_delete(proxy: RunningProxy) -> None:
    described = proxy.admin.get("/admin/model-map").json()
    rows = {row["anthropic_model"]: row for row in described["models"]}
    assert rows["claude-sonnet-4-5"]["source"] == "default"
    assert rows["claude-sonnet-4-5"]["bedrock_model_id"].startswith(described["profile_prefix"] + ".")

    put = proxy.admin.put("/admin/model-map/claude-sonnet-4-5",
                          json={"bedrock_model_id": "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc"})
    assert put.status_code == 200, put.text
    rows = {row["anthropic_model"]: row for row in proxy.admin.get("/admin/model-map").json()["models"]}
    assert rows["claude-sonnet-4-5"]["source"] == "admin"
    assert rows["claude-sonnet-4-5"]["bedrock_model_id"].endswith("application-inference-profile/abc")

    assert proxy.admin.put("/admin/model-map/claude-x", json={"bedrock_model_id": "bad id;"}).status_code == 400
    assert proxy.admin.delete("/admin/model-map/claude-sonnet-4-5").status_code == 200
    assert proxy.admin.delete("/admin/model-map/claude-sonnet-4-5").status_code == 404
