"""Start the real OpenID provider (idp.mjs: panva/oidc-provider, pinned in package.json) on
127.0.0.1 and drive its test-only admin endpoints: rotate its signing key, break its next ID token,
disable an account. Needs ``cd tests/sso && npm ci`` (scripts/test.sh does it)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

HERE = Path(__file__).parent
NODE_MODULES = HERE / "node_modules" / "oidc-provider"
CLIENT_ID, CLIENT_SECRET = "claude-proxy", "claude-proxy-test-secret"


def available() -> bool:
    return shutil.which("node") is not None and NODE_MODULES.exists()


@dataclass
class Idp:
    issuer: str
    process: subprocess.Popen[str]

    def _post(self, path: str, body: dict | None = None) -> dict:
        response = httpx.post(f"{self.issuer}/__admin/{path}", json=body or {}, timeout=10)
        response.raise_for_status()
        return response.json()

    def configure(self, redirect_uris: list[str]) -> None:
        self._post("configure", {"redirect_uris": redirect_uris})

    def rotate(self) -> str:
        """A new signing key (new kid) replaces the old one; returns the new kid."""
        return self._post("rotate")["kid"]

    def tamper(self, mode: str) -> None:
        """The next token response's ID token: ``signature`` (bytes changed), ``aud`` (wrong
        audience) or ``exp`` (expired an hour ago), the last two re-signed with the IdP's real key."""
        self._post("tamper", {"mode": mode})

    def disable(self, account: str) -> None:
        self._post("disable", {"account": account})

    def jwks_kids(self) -> list[str]:
        return [k["kid"] for k in httpx.get(f"{self.issuer}/jwks", timeout=10).json()["keys"]]


@contextmanager
def running_idp(redirect_uris: list[str]) -> Iterator[Idp]:
    process = subprocess.Popen(["node", str(HERE / "idp.mjs")], cwd=HERE, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True,
                               env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "IDP_REDIRECT_URIS": ",".join(redirect_uris),
                                    "IDP_CLIENT_ID": CLIENT_ID, "IDP_CLIENT_SECRET": CLIENT_SECRET})
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            raise RuntimeError("the test IdP (tests/sso/idp.mjs) did not start")
        yield Idp(issuer=json.loads(line)["issuer"], process=process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
