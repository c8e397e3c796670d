"""Envelope encryption: local key-encryption key, and AWS KMS through moto's server mode (real
aioboto3 over loopback HTTP, no in-process patching)."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import boto3
import pytest
from moto.server import ThreadedMotoServer

from app.crypto.envelope import DecryptionError, KmsCipher, LocalKeyCipher, make_cipher

CONTEXT = {"access_key_id": "ak_one"}
SECRET = b"bedrock-api-key-ABSKexample"


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(autouse=True)
def fake_aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def kms_key_id(moto_url: str) -> str:
    kms = boto3.client("kms", region_name="us-east-1", endpoint_url=moto_url)
    return kms.create_key(Description="test app key")["KeyMetadata"]["KeyId"]


async def test_local_round_trip_and_no_plaintext_in_envelope() -> None:
    cipher = LocalKeyCipher(b"s" * 32)
    envelope = await cipher.encrypt(SECRET, CONTEXT)
    assert envelope["kek"] == "local"
    assert SECRET not in repr(envelope).encode()
    assert await cipher.decrypt(envelope, CONTEXT) == SECRET


async def test_local_context_binds_ciphertext_to_its_access_key() -> None:
    cipher = LocalKeyCipher(b"s" * 32)
    envelope = await cipher.encrypt(SECRET, CONTEXT)
    with pytest.raises(DecryptionError):
        await cipher.decrypt(envelope, {"access_key_id": "ak_other"})


async def test_local_wrong_secret_key_fails() -> None:
    envelope = await LocalKeyCipher(b"s" * 32).encrypt(SECRET, CONTEXT)
    with pytest.raises(DecryptionError):
        await LocalKeyCipher(b"t" * 32).decrypt(envelope, CONTEXT)


async def test_local_tampered_ciphertext_fails() -> None:
    cipher = LocalKeyCipher(b"s" * 32)
    envelope = await cipher.encrypt(SECRET, CONTEXT)
    raw = bytearray(base64.b64decode(envelope["ciphertext"]))
    raw[0] ^= 1
    with pytest.raises(DecryptionError):
        await cipher.decrypt({**envelope, "ciphertext": base64.b64encode(bytes(raw)).decode()}, CONTEXT)


async def test_each_encryption_uses_a_fresh_data_key() -> None:
    cipher = LocalKeyCipher(b"s" * 32)
    first, second = await cipher.encrypt(SECRET, CONTEXT), await cipher.encrypt(SECRET, CONTEXT)
    assert first["encrypted_data_key"] != second["encrypted_data_key"]
    assert first["ciphertext"] != second["ciphertext"]


async def test_kms_round_trip_through_moto_server(moto_url: str, kms_key_id: str) -> None:
    cipher = KmsCipher(kms_key_id, region="us-east-1", endpoint_url=moto_url)
    try:
        envelope = await cipher.encrypt(SECRET, CONTEXT)
        assert envelope["kek"] == "kms" and kms_key_id in envelope["kms_key_id"]
        assert SECRET not in repr(envelope).encode()
        assert await cipher.decrypt(envelope, CONTEXT) == SECRET
    finally:
        await cipher.aclose()


async def test_kms_context_mismatch_is_refused(moto_url: str, kms_key_id: str) -> None:
    cipher = KmsCipher(kms_key_id, region="us-east-1", endpoint_url=moto_url)
    try:
        envelope = await cipher.encrypt(SECRET, CONTEXT)
        with pytest.raises(DecryptionError):
            await cipher.decrypt(envelope, {"access_key_id": "ak_other"})
    finally:
        await cipher.aclose()


async def test_kms_envelope_is_not_opened_by_the_local_cipher(moto_url: str, kms_key_id: str) -> None:
    kms = make_cipher(b"s" * 32, kms_key_id=kms_key_id, region="us-east-1", kms_endpoint_url=moto_url)
    try:
        envelope = await kms.encrypt(SECRET, CONTEXT)
    finally:
        await kms.aclose()
    with pytest.raises(DecryptionError):
        await make_cipher(b"s" * 32, kms_key_id=None, region="us-east-1").decrypt(envelope, CONTEXT)
