"""Sign in through the test IdP with plain HTTP (httpx follows the redirects and posts the
IdP's development login form), for tests that need a signed-in client but not a browser."""

from __future__ import annotations

import re
from urllib.parse import quote

import httpx

FORM_ACTION = re.compile(r'<form[^>]*action="([^"]+)"')
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def sign_in(client: httpx.Client, account: str, next_path: str = "/me") -> httpx.Response:
    """Start at ``/auth/oidc/login?next=...``, log in at the IdP as ``account`` (any password),
    and return the proxy's last answer (the page after the redirects, or the refusal)."""
    response = client.get(f"/auth/oidc/login?next={quote(next_path, safe='')}", follow_redirects=True)
    match = FORM_ACTION.search(response.text)
    if match is None or "/interaction/" not in match.group(1):
        return response  # already signed in at the IdP, or refused before the login form
    login_url = httpx.URL(str(response.url)).join(match.group(1))
    return client.post(login_url, data={"prompt": "login", "login": account, "password": "any"},
                       follow_redirects=True)


def csrf_of(html: str) -> str:
    match = CSRF_FIELD.search(html)
    assert match, "page has no csrf_token field"
    return match.group(1)
