"""Dashboard sessions are revocable server-side: a copied cookie stops working at logout, and a
changed admin password ends every session and bearer token. Real proxy on loopback."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator

import httpx
import pytest

from app.auth.admin import AdminAuth
from app.store.admins import AdminRepository, AdminSessionRepository, LoginAttemptRepository
from tests.conftest import ADMIN_PASSWORD, SECRET_KEY, RunningProxy, make_settings, start_proxy
from tests.fakes.anthropic_server import FakeAnthropic
from tests.ui.conftest import UiClient
from app.ui.session import SESSION_COOKIE


def copy_of(client: UiClient, url: str) -> httpx.Client:
    """A second browser holding a copy of ``client``'s session cookie."""
    thief = httpx.Client(base_url=url, timeout=30, follow_redirects=False)
    thief.cookies.set(SESSION_COOKIE, client.http.cookies[SESSION_COOKIE], path="/ui")
    return thief


def test_logout_revokes_a_copied_cookie_at_once(ui_proxy: RunningProxy, own_admin: UiClient) -> None:
    thief = copy_of(own_admin, ui_proxy.url)
    assert thief.get("/ui/users").status_code == 200
    assert own_admin.post("/ui/logout").status_code == 303
    stolen = thief.get("/ui/users")
    assert stolen.status_code == 303 and stolen.headers["location"].startswith("/ui/login")
    thief.close()


def test_logout_via_the_api_revokes_the_bearer_token(ui_proxy: RunningProxy) -> None:
    basic = base64.b64encode(f"admin:{ADMIN_PASSWORD}".encode()).decode()
    token = httpx.post(f"{ui_proxy.url}/admin/auth/login", headers={"authorization": f"Basic {basic}"}).json()
    bearer = {"authorization": f"Bearer {token['access_token']}"}
    assert httpx.get(f"{ui_proxy.url}/admin/users", headers=bearer).status_code == 200
    assert httpx.post(f"{ui_proxy.url}/admin/auth/logout", headers=bearer).status_code == 204
    revoked = httpx.get(f"{ui_proxy.url}/admin/users", headers=bearer)
    assert revoked.status_code == 401 and revoked.json()["error"]["type"] == "authentication_error"


@pytest.fixture
def own_proxy(fake_anthropic: FakeAnthropic) -> Iterator[RunningProxy]:
    yield from start_proxy(make_settings(fake_anthropic.url))


def test_a_changed_admin_password_revokes_every_session_and_token(own_proxy: RunningProxy) -> None:
    browser = UiClient(own_proxy.url)
    assert browser.login().status_code == 303
    assert browser.get("/ui/users").status_code == 200
    assert own_proxy.admin.get("/admin/users").status_code == 200
    # What a restart with a new PROXY_ADMIN_PASSWORD does (another replica, same store).
    db = own_proxy.services.store.db
    restarted = AdminAuth(AdminRepository(db), AdminSessionRepository(db), LoginAttemptRepository(db), "admin",
                          SECRET_KEY.encode(), token_ttl_s=3600)
    asyncio.run(restarted.ensure_account("the new admin password"))
    own_proxy.services.admin_auth._session_cache.clear()  # this replica's 1 s cache, skipped
    assert browser.get("/ui/users").status_code == 303
    assert own_proxy.admin.get("/admin/users").status_code == 401
    browser.close()
