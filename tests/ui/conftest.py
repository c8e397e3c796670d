"""Dashboard test helpers: one running proxy (real socket, embedded store, fake Anthropic) per
module, and ``UiClient``, an httpx client that logs in through the login form and sends the CSRF
token like the pages do."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_PASSWORD, RunningProxy, make_settings, start_proxy
from tests.fakes.anthropic_server import FakeAnthropic, running_fake_anthropic

CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    match = CSRF_FIELD.search(html)
    assert match, "page has no csrf_token field"
    return match.group(1)


class UiClient:
    """``get``/``post`` against the dashboard; ``post`` adds the CSRF field unless ``csrf=None``."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=30, follow_redirects=False)
        self.csrf: str | None = None

    def login(self, password: str = ADMIN_PASSWORD) -> httpx.Response:
        self.csrf = csrf_of(self.http.get("/ui/login").text)
        response = self.post("/ui/login", {"username": "admin", "password": password})
        if response.status_code == 303:
            self.csrf = csrf_of(self.http.get("/ui/users").text)  # a new session has a new token
        return response

    def get(self, url: str, *, htmx: bool = False, **kwargs: Any) -> httpx.Response:
        return self.http.get(url, headers={"HX-Request": "true"} if htmx else None, **kwargs)

    def post(self, url: str, data: dict[str, str] | None = None, *, htmx: bool = False,
             csrf: str | None | bool = True) -> httpx.Response:
        form = dict(data or {})
        headers = {}
        token = self.csrf if csrf is True else csrf or None
        if token and htmx:
            headers["X-CSRF-Token"] = token
        elif token:
            form["csrf_token"] = token
        if htmx:
            headers["HX-Request"] = "true"
        return self.http.post(url, data=form, headers=headers)

    def close(self) -> None:
        self.http.close()


@pytest.fixture(scope="module")
def ui_env() -> Iterator[tuple[RunningProxy, FakeAnthropic]]:
    with running_fake_anthropic() as fake:
        for proxy in start_proxy(make_settings(fake.url, public_base_url="https://proxy.example.com")):
            yield proxy, fake


@pytest.fixture(scope="module")
def ui_proxy(ui_env: tuple[RunningProxy, FakeAnthropic]) -> RunningProxy:
    return ui_env[0]


def logged_in(ui_proxy: RunningProxy) -> Iterator[UiClient]:
    client = UiClient(ui_proxy.url)
    assert client.login().status_code == 303
    yield client
    client.close()


@pytest.fixture(scope="module")
def admin(ui_proxy: RunningProxy) -> Iterator[UiClient]:
    """Logged in once per module (argon2 makes each login cost a few hundred ms)."""
    yield from logged_in(ui_proxy)


@pytest.fixture
def own_admin(ui_proxy: RunningProxy) -> Iterator[UiClient]:
    """A session of the test's own, for tests that end it."""
    yield from logged_in(ui_proxy)


@pytest.fixture
def anon(ui_proxy: RunningProxy) -> Iterator[UiClient]:
    client = UiClient(ui_proxy.url)
    yield client
    client.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Debian Chromium (Playwright) per test module, for the browser-marked modules
    (they skip when Chromium or Playwright is missing). A module that needs other launch flags
    (e.g. a host-resolver rule) defines its own."""
    from playwright.sync_api import sync_playwright

    from tests.ui.test_browser import ARGS, ARTIFACTS, CHROMIUM

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        yield chromium
        chromium.close()
