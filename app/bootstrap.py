"""Start-up decisions about secrets and the embedded store's demo data.

Embedded store (no ``PROXY_MONGODB_URL``): missing ``PROXY_SECRET_KEY`` / ``PROXY_ADMIN_PASSWORD``
are generated for this run, a demo user with an access key is created, and a ready-to-paste block
is printed. Real store: missing secrets are a start-up error that says what to set.
"""

from __future__ import annotations

import secrets
import sys
from dataclasses import dataclass

from app.config import Settings


class ConfigError(RuntimeError):
    """A setting is missing or wrong; the message says which and what to set."""


@dataclass(frozen=True)
class Secrets:
    secret_key: bytes
    admin_password: str
    generated: tuple[str, ...]  # names of the settings generated for this run


def resolve_secrets(settings: Settings) -> Secrets:
    """The secret key and admin password to use; raises ConfigError when a real store lacks them."""
    secret = settings.secret_key.get_secret_value() if settings.secret_key else None
    password = settings.admin_password.get_secret_value() if settings.admin_password else None
    missing = [name for name, value in (("PROXY_SECRET_KEY", secret), ("PROXY_ADMIN_PASSWORD", password))
               if not value]
    if missing and not settings.embedded_store:
        raise ConfigError(
            f"{' and '.join(missing)} must be set when PROXY_MONGODB_URL points at a real database "
            "(keys hashed with a throwaway secret would stop working at the next restart). "
            "Generate one with: python -c 'import secrets; print(secrets.token_urlsafe(48))'")
    if secret is not None and len(secret) < 32:
        raise ConfigError("PROXY_SECRET_KEY must be at least 32 characters")
    return Secrets(secret_key=(secret or secrets.token_urlsafe(48)).encode(),
                   admin_password=password or secrets.token_urlsafe(18),
                   generated=tuple(missing))


def embedded_banner(*, base_url: str, access_key: str | None, admin_username: str,
                    admin_password: str | None) -> str:
    """The loud notice and ready-to-paste block printed at start in embedded mode."""
    lines = [
        "=" * 78,
        "claude-code-proxy: EMBEDDED IN-MEMORY STORE - every user, key and usage record is",
        "LOST ON EXIT. Set PROXY_MONGODB_URL to use MongoDB / DocumentDB.",
        "=" * 78,
    ]
    if access_key:
        lines += ["", "# Claude Code, with your own Anthropic credential (recommended form):",
                  f"export ANTHROPIC_BASE_URL={base_url}",
                  f'export ANTHROPIC_CUSTOM_HEADERS="x-proxy-key: {access_key}"',
                  "export ANTHROPIC_API_KEY=sk-ant-...   # or ANTHROPIC_AUTH_TOKEN=<subscription token>",
                  "", "# or, with the key in the URL:",
                  f"export ANTHROPIC_BASE_URL={base_url}/ak/{access_key}"]
    if admin_password:
        lines += ["", f"# Admin (generated for this run): {admin_username} / {admin_password}",
                  f"#   dashboard: {base_url}/ui   API docs: {base_url}/docs (PROXY_API_DOCS_ENABLED=true)"]
    lines.append("=" * 78)
    return "\n".join(lines)


def print_banner(text: str) -> None:
    print(text, file=sys.stdout, flush=True)
