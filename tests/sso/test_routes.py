"""The sign-in routes against the real OpenID provider (idp.mjs), over plain HTTP: the
authorization request, state / login CSRF, refused ID tokens from the provider itself (tampered,
wrong audience, expired), key rotation at the provider, disabled users, and the break-glass login."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.sso.conftest import SsoProxy
from tests.sso.flow import sign_in


@pytest.fixture
def browser_like(sso_proxy: SsoProxy) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sso_proxy.url, timeout=30) as client:
        yield client


def test_login_sends_the_browser_to_the_idp_with_pkce_state_and_nonce(
        sso_proxy: SsoProxy, browser_like: httpx.Client) -> None:
    response = browser_like.get("/auth/oidc/login?next=%2F%2Fevil.example.com%2F")
    assert response.status_code == 303
    location = urlsplit(response.headers["location"])
    params = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert f"{location.scheme}://{location.netloc}" == sso_proxy.idp.issuer
    assert params["response_type"] == "code" and params["client_id"] == "claude-proxy"
    assert params["redirect_uri"] == f"{sso_proxy.url}/auth/oidc/callback"
    assert params["code_challenge_method"] == "S256" and len(params["code_challenge"]) == 43
    assert params["scope"] == "openid email profile"
    assert len(params["state"]) >= 32 and len(params["nonce"]) >= 32
    cookie = response.headers["set-cookie"]
    assert "ccp_oidc=" in cookie and "Path=/auth/oidc" in cookie and "HttpOnly" in cookie
    assert params["state"] not in cookie  # signed, but the cookie is not the bare state either way
    # the open redirect was dropped: the flow remembers /me, not //evil.example.com/
    page = sign_in(browser_like, "bob", "//evil.example.com/")
    assert urlsplit(str(page.url)).path == "/me" and urlsplit(str(page.url)).netloc == urlsplit(sso_proxy.url).netloc


def test_a_callback_that_did_not_start_in_this_browser_is_refused(
        sso_proxy: SsoProxy, browser_like: httpx.Client) -> None:
    # Login CSRF: an attacker's own (valid) code and state, replayed into the victim's browser.
    attacker = httpx.Client(base_url=sso_proxy.url, timeout=30)
    start = attacker.get("/auth/oidc/login?next=/me")
    state = parse_qs(urlsplit(start.headers["location"]).query)["state"][0]
    response = browser_like.get(f"/auth/oidc/callback?code=stolen-code&state={state}")
    assert response.status_code == 400 and "state mismatch" in response.text
    assert "ccp_me" not in response.headers.get("set-cookie", "")
    attacker.close()


def test_an_idp_refusal_is_a_clear_page(browser_like: httpx.Client) -> None:
    response = browser_like.get("/auth/oidc/callback?error=access_denied&state=x")
    assert response.status_code == 403 and "refused the sign-in" in response.text


@pytest.mark.parametrize(("mode", "message"), [
    ("signature", "signature does not verify"),
    ("aud", "aud claim is wrong"),
    ("exp", "has expired"),
])
def test_broken_id_tokens_from_the_provider_are_refused(sso_proxy: SsoProxy, browser_like: httpx.Client,
                                                        mode: str, message: str) -> None:
    sso_proxy.idp.tamper(mode)
    response = sign_in(browser_like, "bob")
    assert response.status_code == 401, response.text[:500]
    assert message in response.text
    assert "ccp_me" not in browser_like.cookies


def test_a_state_is_good_for_one_callback(sso_proxy: SsoProxy, browser_like: httpx.Client) -> None:
    page = sign_in(browser_like, "bob")
    assert page.status_code == 200 and "bob@example.com" in page.text
    callback = next(r for r in page.history if r.url.path == "/auth/oidc/callback")
    replay = browser_like.get(str(callback.url))
    assert replay.status_code == 400 and ("already used" in replay.text or "state mismatch" in replay.text)


def test_the_idp_rotates_its_signing_key_and_the_next_sign_in_still_works(sso_proxy: SsoProxy) -> None:
    with httpx.Client(base_url=sso_proxy.url, timeout=30) as first:
        assert sign_in(first, "bob").status_code == 200
    jwks = sso_proxy.services.sso.client.jwks
    fetches = jwks.fetches
    old_kids = sso_proxy.idp.jwks_kids()
    new_kid = sso_proxy.idp.rotate()
    assert sso_proxy.idp.jwks_kids() == [new_kid] and new_kid not in old_kids
    with httpx.Client(base_url=sso_proxy.url, timeout=30) as second:
        page = sign_in(second, "bob")
    assert page.status_code == 200 and "bob@example.com" in page.text
    assert jwks.fetches == fetches + 1  # the unknown kid made exactly one refetch


def test_me_signed_out_offers_sign_in(browser_like: httpx.Client) -> None:
    page = browser_like.get("/me")
    assert page.status_code == 200 and 'href="/auth/oidc/login?next=%2Fme"' in page.text


def test_dashboard_login_page_offers_sso_first_and_the_break_glass_form(browser_like: httpx.Client) -> None:
    page = browser_like.get("/ui/login")
    assert "Sign in with single sign-on" in page.text and 'action="/ui/login"' in page.text
    assert page.text.index("Sign in with single sign-on") < page.text.index('action="/ui/login"')


def test_disabling_a_user_in_the_proxy_ends_their_session_and_refuses_the_next_sign_in(
        sso_proxy: SsoProxy) -> None:
    with httpx.Client(base_url=sso_proxy.url, timeout=30) as carol:
        page = sign_in(carol, "carol")
        assert page.status_code == 200 and "carol@example.com" in page.text
        user = next(u for u in sso_proxy.admin.get("/admin/users", params={"search": "carol@"}).json()["data"])
        assert user["groups"] == [] and user["idp_groups"] == []
        response = sso_proxy.admin.put(f"/admin/users/{user['id']}/status", json={"status": "disabled"})
        assert response.status_code == 200 and response.json()["status"] == "disabled"
        assert "Sign in with single sign-on" in carol.get("/me").text  # the session ended at once
        refused = sign_in(carol, "carol")
        assert refused.status_code == 403 and "disabled in this proxy" in refused.text
        sso_proxy.admin.put(f"/admin/users/{user['id']}/status", json={"status": "active"})


def test_a_person_disabled_at_the_idp_cannot_sign_in_again(sso_proxy: SsoProxy) -> None:
    with httpx.Client(base_url=sso_proxy.url, timeout=30) as before:
        assert "dave@example.com" in sign_in(before, "dave").text
    sso_proxy.idp.disable("dave")
    with httpx.Client(base_url=sso_proxy.url, timeout=30) as after:
        response = sign_in(after, "dave")
        assert "ccp_me" not in after.cookies
    # The IdP stops the flow on its side: the proxy's callback is never reached.
    assert all(r.url.path != "/auth/oidc/callback" for r in [*response.history, response])
    assert str(response.url).startswith(sso_proxy.idp.issuer)


def test_with_the_break_glass_account_disabled_the_password_is_refused(sso_proxy: SsoProxy) -> None:
    from app.main import create_app
    from tests.conftest import ADMIN_PASSWORD
    from tests.sso.conftest import free_port, sso_settings
    from tests.support.servers import serve_in_thread

    port = free_port()
    settings = sso_settings(sso_proxy.fake.url, f"http://127.0.0.1:{port}", sso_proxy.idp.issuer,
                            oidc_local_admin_enabled=False)
    with serve_in_thread(create_app(settings), port=port) as url, httpx.Client(base_url=url, timeout=30) as client:
        page = client.get("/ui/login")
        assert "Sign in with single sign-on" in page.text and 'action="/ui/login"' not in page.text
        response = client.post("/admin/auth/login", auth=("admin", ADMIN_PASSWORD))
        assert response.status_code == 401 and "PROXY_OIDC_LOCAL_ADMIN_ENABLED" in response.text


def test_an_email_domain_outside_the_allowed_ones_is_refused(sso_proxy: SsoProxy) -> None:
    settings = sso_proxy.services.settings
    settings.oidc_allowed_email_domains = "corp.example.org, Example.NET"
    try:
        with httpx.Client(base_url=sso_proxy.url, timeout=30) as client:
            response = sign_in(client, "carol")
            assert response.status_code == 403 and "allowed e-mail domains: corp.example.org, example.net" in response.text
            assert "ccp_me" not in client.cookies
    finally:
        settings.oidc_allowed_email_domains = ""
