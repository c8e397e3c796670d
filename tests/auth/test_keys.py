from __future__ import annotations

from app.auth.keys import (credential_fingerprint, display_prefix, generate_access_key, hash_access_key,
                           is_well_formed)


def test_generated_keys_are_well_formed_unique_and_hashed_with_the_pepper() -> None:
    keys = {generate_access_key() for _ in range(200)}
    assert len(keys) == 200
    key = keys.pop()
    assert key.startswith("sk-ccp-") and is_well_formed(key) and len(key) == 50
    assert hash_access_key(b"a" * 32, key) != hash_access_key(b"b" * 32, key)
    assert len(hash_access_key(b"a" * 32, key)) == 64
    assert display_prefix(key) == key[:13] and key not in display_prefix(key) + "x"


def test_malformed_keys() -> None:
    for bad in ("", "sk-ccp-", "sk-ant-abc", "sk-ccp-" + "a" * 10, "sk-ccp-" + "a" * 40 + "!"):
        assert not is_well_formed(bad)


def test_credential_fingerprint_is_stable_and_not_the_credential() -> None:
    fp = credential_fingerprint(b"k" * 32, "sk-ant-secret")
    assert fp == credential_fingerprint(b"k" * 32, "sk-ant-secret")
    assert "secret" not in fp and len(fp) == 32
    assert fp != credential_fingerprint(b"k" * 32, "sk-ant-other")
