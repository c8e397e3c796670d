"""Envelope encryption for secrets stored in MongoDB (today: per-access-key Bedrock API keys).

Each secret gets its own random 256-bit data key; the plaintext is sealed with AES-256-GCM
(``cryptography``), the encryption context is the GCM associated data, so a ciphertext copied onto
another access key fails to decrypt. The data key itself is protected one of two ways:

- :class:`KmsCipher` (``PROXY_KMS_KEY_ID`` set): AWS KMS ``GenerateDataKey`` returns the data key and
  its KMS-encrypted copy; only the copy is stored; ``Decrypt`` (with the same encryption context)
  recovers it. Source: https://docs.aws.amazon.com/kms/latest/developerguide/concepts.html#enveloping
- :class:`LocalKeyCipher` (no KMS): the data key is wrapped with AES-256-GCM under a key-encryption
  key derived from ``PROXY_SECRET_KEY`` with HKDF-SHA256 (RFC 5869).

Stored envelope (a dict, all binary fields base64)::

    {"v": 1, "kek": "kms" | "local", "kms_key_id": str | None,
     "encrypted_data_key": str, "nonce": str, "ciphertext": str}

Errors: :class:`DecryptionError` for a wrong context, a tampered envelope, a KMS refusal, or an
envelope sealed by the other kind of cipher.
"""

from __future__ import annotations

import base64
import json
import os
from contextlib import AsyncExitStack
from typing import Any, Protocol

import aioboto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

ENVELOPE_VERSION = 1
_HKDF_INFO = b"claude-code-proxy/envelope-kek/v1"
_WRAP_CONTEXT = b"claude-code-proxy/data-key"


class DecryptionError(Exception):
    """The envelope cannot be opened with this cipher and context."""


class Cipher(Protocol):
    async def encrypt(self, plaintext: bytes, context: dict[str, str]) -> dict[str, Any]: ...

    async def decrypt(self, envelope: dict[str, Any], context: dict[str, str]) -> bytes: ...

    async def aclose(self) -> None: ...


def bedrock_key_context(access_key_id: str) -> dict[str, str]:
    """The encryption context that binds a stored Bedrock API key to its access key."""
    return {"purpose": "bedrock-api-key", "access_key_id": access_key_id}


def _aad(context: dict[str, str]) -> bytes:
    """Canonical bytes of the encryption context (sorted keys), used as GCM associated data."""
    return json.dumps(context, sort_keys=True, separators=(",", ":")).encode()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(envelope: dict[str, Any], name: str) -> bytes:
    try:
        return base64.b64decode(envelope[name], validate=True)
    except (KeyError, TypeError, ValueError) as exc:
        raise DecryptionError(f"envelope field {name!r} is missing or not base64") from exc


def _seal(data_key: bytes, plaintext: bytes, context: dict[str, str]) -> tuple[bytes, bytes]:
    nonce = os.urandom(12)
    return nonce, AESGCM(data_key).encrypt(nonce, plaintext, _aad(context))


def _open(data_key: bytes, envelope: dict[str, Any], context: dict[str, str]) -> bytes:
    try:
        return AESGCM(data_key).decrypt(_unb64(envelope, "nonce"), _unb64(envelope, "ciphertext"), _aad(context))
    except InvalidTag as exc:
        raise DecryptionError("ciphertext does not match this encryption context") from exc


def _check_kind(envelope: dict[str, Any], kek: str) -> None:
    if envelope.get("v") != ENVELOPE_VERSION or envelope.get("kek") != kek:
        raise DecryptionError(f"envelope was not sealed by the {kek!r} cipher "
                              f"(kek={envelope.get('kek')!r}, v={envelope.get('v')!r})")


class LocalKeyCipher:
    """Data keys wrapped under HKDF-SHA256(secret_key). No I/O; ``encrypt``/``decrypt`` are async only
    to share :class:`Cipher`'s interface with :class:`KmsCipher`."""

    def __init__(self, secret_key: bytes) -> None:
        kek = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(secret_key)
        self._kek = AESGCM(kek)

    async def encrypt(self, plaintext: bytes, context: dict[str, str]) -> dict[str, Any]:
        data_key = AESGCM.generate_key(bit_length=256)
        nonce, ciphertext = _seal(data_key, plaintext, context)
        wrap_nonce = os.urandom(12)
        wrapped = wrap_nonce + self._kek.encrypt(wrap_nonce, data_key, _WRAP_CONTEXT + _aad(context))
        return {"v": ENVELOPE_VERSION, "kek": "local", "kms_key_id": None,
                "encrypted_data_key": _b64(wrapped), "nonce": _b64(nonce), "ciphertext": _b64(ciphertext)}

    async def decrypt(self, envelope: dict[str, Any], context: dict[str, str]) -> bytes:
        _check_kind(envelope, "local")
        wrapped = _unb64(envelope, "encrypted_data_key")
        try:
            data_key = self._kek.decrypt(wrapped[:12], wrapped[12:], _WRAP_CONTEXT + _aad(context))
        except InvalidTag as exc:
            raise DecryptionError("data key does not unwrap with this secret key and context") from exc
        return _open(data_key, envelope, context)

    async def aclose(self) -> None:
        return None


class KmsCipher:
    """Data keys from AWS KMS ``GenerateDataKey`` (AES_256) under ``key_id``; one long-lived aioboto3
    KMS client (default credential chain, e.g. the ECS task role), botocore retries as configured.

    Raises :class:`DecryptionError` when KMS refuses (wrong context, disabled key, access denied) and
    lets connection errors propagate as botocore exceptions."""

    def __init__(self, key_id: str, *, region: str, endpoint_url: str | None = None) -> None:
        self._key_id, self._region, self._endpoint_url = key_id, region, endpoint_url
        self._stack: AsyncExitStack | None = None
        self._client: Any = None

    async def _kms(self) -> Any:
        if self._client is None:
            stack = AsyncExitStack()
            config = Config(retries={"total_max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=10)
            self._client = await stack.enter_async_context(aioboto3.Session().client(
                "kms", region_name=self._region, endpoint_url=self._endpoint_url, config=config))
            self._stack = stack
        return self._client

    async def encrypt(self, plaintext: bytes, context: dict[str, str]) -> dict[str, Any]:
        kms = await self._kms()
        generated = await kms.generate_data_key(KeyId=self._key_id, KeySpec="AES_256", EncryptionContext=context)
        nonce, ciphertext = _seal(generated["Plaintext"], plaintext, context)
        return {"v": ENVELOPE_VERSION, "kek": "kms", "kms_key_id": generated.get("KeyId", self._key_id),
                "encrypted_data_key": _b64(generated["CiphertextBlob"]), "nonce": _b64(nonce),
                "ciphertext": _b64(ciphertext)}

    async def decrypt(self, envelope: dict[str, Any], context: dict[str, str]) -> bytes:
        _check_kind(envelope, "kms")
        kms = await self._kms()
        try:
            answer = await kms.decrypt(CiphertextBlob=_unb64(envelope, "encrypted_data_key"),
                                       EncryptionContext=context, KeyId=envelope.get("kms_key_id") or self._key_id)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "ClientError")
            raise DecryptionError(f"KMS refused to decrypt the data key ({code})") from exc
        return _open(answer["Plaintext"], envelope, context)

    async def aclose(self) -> None:
        if self._stack is not None:
            stack, self._stack, self._client = self._stack, None, None
            try:
                await stack.aclose()
            except BotoCoreError:
                pass


def make_cipher(secret_key: bytes, *, kms_key_id: str | None, region: str,
                kms_endpoint_url: str | None = None) -> Cipher:
    """:class:`KmsCipher` when ``kms_key_id`` is set, else :class:`LocalKeyCipher`."""
    if kms_key_id:
        return KmsCipher(kms_key_id, region=region, endpoint_url=kms_endpoint_url)
    return LocalKeyCipher(secret_key)
