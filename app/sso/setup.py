"""Copy-ready Claude Code setup for one access key (pure).

Claude Code reads ``env`` from its settings files and sets those variables for every session;
``ANTHROPIC_CUSTOM_HEADERS`` adds ``name: value`` headers to each request and
``ANTHROPIC_BASE_URL`` points it at this proxy. The developer's own Anthropic credential
(``ANTHROPIC_API_KEY`` or a subscription login) stays theirs: the proxy forwards it.
Managed settings (highest precedence, users cannot override them) are the same JSON, placed by
MDM or configuration management at the paths in ``MANAGED_SETTINGS_PATHS``.
Source: https://code.claude.com/docs/en/settings (settings files, ``env``, managed settings).
"""

from __future__ import annotations

import json
from typing import Any

MANAGED_SETTINGS_PATHS = {
    "macOS": "/Library/Application Support/ClaudeCode/managed-settings.json",
    "Linux and WSL": "/etc/claude-code/managed-settings.json",
    "Windows": "C:\\ProgramData\\ClaudeCode\\managed-settings.json",
}
KEY_PLACEHOLDER = "<your access key>"
PROXY_KEY_HEADER = "x-proxy-key"  # the header app/proxy reads the access key from


def claude_code_env(base_url: str, access_key: str | None) -> dict[str, str]:
    return {"ANTHROPIC_BASE_URL": base_url.rstrip("/"),
            "ANTHROPIC_CUSTOM_HEADERS": f"{PROXY_KEY_HEADER}: {access_key or KEY_PLACEHOLDER}"}


def setup_snippets(base_url: str, access_key: str | None) -> dict[str, Any]:
    """-> ``{"settings_json", "shell", "managed_json", "managed_paths"}`` (strings, and the path table)."""
    env = claude_code_env(base_url, access_key)
    settings_json = json.dumps({"env": env}, indent=2)
    shell = "\n".join(f"export {name}={json.dumps(value)}" if " " in value else f"export {name}={value}"
                      for name, value in env.items())
    return {"settings_json": settings_json, "shell": shell, "managed_json": settings_json,
            "managed_paths": MANAGED_SETTINGS_PATHS}
