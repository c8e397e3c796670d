"""Bad input gets Anthropic's error envelope with the right status, and reaches no upstream."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import CLIENT_API_KEY, RunningProxy, make_settings, start_proxy
from tests.fakes.anthropic_server import FakeAnthropic

MODEL = "claude-haiku-4-5"


def post(proxy: RunningProxy, *, key: str | None, body: bytes | None = None, api_key: str | None = CLIENT_API_KEY,
         path: str = "/v1/messages") -> httpx.Response:
    headers = {"content-type": "application/json"}
    if key is not None:
        headers["x-proxy-key"] = key
    if api_key is not None:
        headers["x-api-key"] = api_key
    content = body if body is not None else b'{"model":"%s","max_tokens":8,"messages":[]}' % MODEL.encode()
    return proxy.http.post(path, content=content, headers=headers)


def assert_envelope(response: httpx.Response, status: int, error_type: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["type"] == "error" and body["error"]["type"] == error_type
    return body["error"]["message"]


@pytest.mark.parametrize(("key", "says"), [
    (None, "none was sent"), ("", "none was sent"),
    ("garbage", "not shaped like one"), ("sk-ccp-short", "not shaped like one"),
    ("sk-ccp-" + "A" * 43, "not accepted (unknown, revoked or expired"),
])
def test_bad_key_is_401_saying_what_was_wrong_and_not_to_retry(
        proxy: RunningProxy, fake_anthropic: FakeAnthropic, key: str | None, says: str) -> None:
    response = post(proxy, key=key)
    message = assert_envelope(response, 401, "authentication_error")
    assert message.startswith("invalid proxy access key: ") and says in message
    assert "x-proxy-key" in message
    assert key is None or not key or key not in message  # the key is never echoed
    assert response.headers["x-should-retry"] == "false"
    assert fake_anthropic.messages_requests() == []


def test_unknown_and_revoked_keys_get_the_same_answer(proxy: RunningProxy) -> None:
    revoked = proxy.new_key()
    assert proxy.admin.delete(f"/admin/access-keys/{revoked['id']}").status_code == 200
    answers = {post(proxy, key=key).text for key in ("sk-ccp-" + "C" * 43, revoked["key"])}
    assert len(answers) == 1, answers


def test_unknown_key_in_path_is_401_naming_the_path_form(proxy: RunningProxy) -> None:
    response = post(proxy, key=None, path="/ak/sk-ccp-" + "B" * 43 + "/v1/messages")
    message = assert_envelope(response, 401, "authentication_error")
    assert "/ak/<key>/" in message and "B" * 43 not in message
    assert response.headers["x-should-retry"] == "false"


def test_missing_client_credential_says_what_to_set(proxy: RunningProxy, fake_anthropic: FakeAnthropic) -> None:
    message = assert_envelope(post(proxy, key=proxy.key, api_key=None), 401, "authentication_error")
    assert "ANTHROPIC_API_KEY" in message and "ANTHROPIC_AUTH_TOKEN" in message
    assert fake_anthropic.messages_requests() == []


@pytest.mark.parametrize("body", [b"not json", b"[1,2]", b"", b'{"model": 5}', b"\xff\xfe"])
def test_body_not_a_json_object_is_400(proxy: RunningProxy, body: bytes) -> None:
    assert_envelope(post(proxy, key=proxy.key, body=body), 400, "invalid_request_error")


def test_body_over_limit_is_413(fake_anthropic: FakeAnthropic) -> None:
    for running in start_proxy(make_settings(fake_anthropic.url, max_request_body_bytes=1000), in_process=True):
        big = b'{"model":"m","messages":[{"role":"user","content":"' + b"x" * 2000 + b'"}]}'
        assert_envelope(post(running, key=running.key, body=big), 413, "request_too_large")
        # Also when the client streams the body without a content-length.
        response = running.http.post("/v1/messages", content=iter([big[:600], big[600:]]),
                              headers={"x-proxy-key": running.key, "x-api-key": CLIENT_API_KEY})
        assert_envelope(response, 413, "request_too_large")
    assert fake_anthropic.messages_requests() == []


def test_revoke_and_rotate_take_effect(proxy: RunningProxy) -> None:
    assert post(proxy, key=proxy.key).status_code == 200
    rotated = proxy.admin.post(f"/admin/access-keys/{proxy.key_id}/rotate")
    assert rotated.status_code == 201
    new = rotated.json()
    assert new["key"] != proxy.key and new["key"].startswith("sk-ccp-")
    assert_envelope(post(proxy, key=proxy.key), 401, "authentication_error")  # grace period 0
    assert post(proxy, key=new["key"]).status_code == 200
    assert proxy.admin.delete(f"/admin/access-keys/{new['id']}").json()["status"] == "revoked"
    assert_envelope(post(proxy, key=new["key"]), 401, "authentication_error")


def test_unknown_route_and_admin_without_token(proxy: RunningProxy) -> None:
    assert_envelope(proxy.http.get("/nope"), 404, "not_found_error")
    assert_envelope(proxy.http.get("/admin/users"), 401, "authentication_error")
    assert_envelope(proxy.http.get("/admin/users", headers={"authorization": "Bearer forged"}),
                    401, "authentication_error")
    assert_envelope(proxy.admin.post("/admin/users", json={"email": "x"}), 400, "invalid_request_error")
    assert_envelope(proxy.admin.get("/admin/users/usr_missing"), 404, "not_found_error")
