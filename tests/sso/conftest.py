"""Single sign-on fixtures: the real OpenID provider (idp.mjs) and a proxy configured for it, on
loopback, with the fake Anthropic upstream. The proxy must know its own URL before it starts (the
redirect URI), so it gets a port picked here."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from app.main import create_app
from tests.conftest import admin_client, make_settings
from tests.fakes.anthropic_server import FakeAnthropic, running_fake_anthropic
from tests.sso.idp import CLIENT_ID, CLIENT_SECRET, Idp, available, running_idp
from tests.support.servers import serve_in_thread

pytestmark = pytest.mark.skipif(not available(), reason="needs node and `cd tests/sso && npm ci`")

ADMIN_GROUP = "proxy-admins"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class SsoProxy:
    url: str
    app: Any
    admin: httpx.Client  # the local (break-glass) admin's API client
    idp: Idp
    fake: FakeAnthropic

    @property
    def services(self) -> Any:
        return self.app.state.services


def sso_settings(fake_url: str, base_url: str, issuer: str, **overrides: Any) -> Any:
    values: dict[str, Any] = dict(public_base_url=base_url, oidc_issuer=issuer, oidc_client_id=CLIENT_ID,
                                  oidc_client_secret=CLIENT_SECRET, oidc_admin_groups=f"{ADMIN_GROUP}, other-admins",
                                  oidc_group_map={"engineering": "eng", ADMIN_GROUP: ["admins", "eng"]},
                                  self_service_max_keys=2)
    values.update(overrides)
    return make_settings(fake_url, **values)


@pytest.fixture(scope="module")
def sso_proxy() -> Iterator[SsoProxy]:
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    with running_fake_anthropic() as fake, running_idp([f"{base_url}/auth/oidc/callback"]) as idp:
        app = create_app(sso_settings(fake.url, base_url, idp.issuer))
        with serve_in_thread(app, port=port) as url:
            admin = admin_client(url)
            try:
                yield SsoProxy(url=url, app=app, admin=admin, idp=idp, fake=fake)
            finally:
                admin.close()
