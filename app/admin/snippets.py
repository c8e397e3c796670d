"""The shell lines that point Claude Code at this proxy with one access key (pure).

What Claude Code needs (checked with the pinned CLI 2.1.330, docs/testing-clients.md): the base
URL, the proxy key (a header, or in the URL path), and *some* credential, or it stops with
"Not logged in · Please run /login". ``anthropic_first`` / ``anthropic_only`` keys forward the
developer's own credential to Anthropic, so the snippet asks for it. A ``bedrock_only`` key never
uses one, so the snippet sets a placeholder ``ANTHROPIC_AUTH_TOKEN``: a bearer token, not an API
key, so interactive Claude Code does not stop at its "use this API key?" question (default No).
"""

from __future__ import annotations

from dataclasses import dataclass

BEDROCK_ONLY_TOKEN = "bedrock-only"


@dataclass(frozen=True)
class Snippets:
    """``header``: the recommended form (the key in a header; URLs end up in logs); ``path``: the
    key in the base URL; ``credential_note``: one sentence on the credential lines."""

    header: str
    path: str
    credential_note: str


def claude_code_snippets(base_url: str, key: str, policy: str) -> Snippets:
    """Snippets for ``key`` with its effective ``policy`` (the key's own, else the proxy default)."""
    base_url = base_url.rstrip("/")
    if policy == "bedrock_only":
        credential = (f"export ANTHROPIC_AUTH_TOKEN={BEDROCK_ONLY_TOKEN}   "
                      "# any value: Claude Code needs one to start; this key never uses it")
        note = ("This key is served by Amazon Bedrock only: no Anthropic credential is needed, but Claude Code "
                "refuses to start without one, so the snippet sets a placeholder.")
    else:
        credential = ("export ANTHROPIC_API_KEY=sk-ant-...   "
                      "# your own Anthropic API key, or instead: export ANTHROPIC_AUTH_TOKEN=<subscription token>")
        note = ("Requests go to Anthropic with the developer's own credential: replace sk-ant-... with it "
                "(or use ANTHROPIC_AUTH_TOKEN for a Claude subscription token).")
    header = "\n".join([f"export ANTHROPIC_BASE_URL={base_url}",
                        f'export ANTHROPIC_CUSTOM_HEADERS="x-proxy-key: {key}"', credential])
    path = "\n".join([f"export ANTHROPIC_BASE_URL={base_url}/ak/{key}", credential])
    return Snippets(header=header, path=path, credential_note=note)
