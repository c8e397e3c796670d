"""Access keys: generation and hashing (pure, no I/O).

A key looks like ``sk-ccp-<43 url-safe chars>`` (256 bits of randomness). Only
HMAC-SHA256(secret_key, key) and a short display prefix are stored, so a leaked database does not
leak usable keys, and the pepper (``PROXY_SECRET_KEY``) lives outside it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

KEY_PREFIX = "sk-ccp-"
DISPLAY_PREFIX_LEN = len(KEY_PREFIX) + 6
_KEY_RE = re.compile(r"^sk-ccp-[A-Za-z0-9_-]{20,128}$")


def generate_access_key() -> str:
    """A new random access key (``sk-ccp-`` + 43 url-safe base64 chars)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def is_well_formed(key: str) -> bool:
    """True when ``key`` has the access-key shape; says nothing about whether it exists."""
    return bool(_KEY_RE.fullmatch(key))


def hash_access_key(secret_key: bytes, key: str) -> str:
    """HMAC-SHA256 of the key under the server pepper, as 64 hex chars."""
    return hmac.new(secret_key, key.encode(), hashlib.sha256).hexdigest()


def display_prefix(key: str) -> str:
    """The first characters shown in lists (e.g. ``sk-ccp-AbC12x``); not enough to guess the key."""
    return key[:DISPLAY_PREFIX_LEN]


def credential_fingerprint(secret_key: bytes, credential: str) -> str:
    """A stable, non-reversible id for a client's upstream credential (API key or OAuth token),
    used to key cooldown state without storing the credential: HMAC-SHA256, 32 hex chars."""
    return hmac.new(secret_key, b"credential:" + credential.encode(), hashlib.sha256).hexdigest()[:32]
