"""Per-access-key Bedrock API keys: the envelope stored on the access key, decrypted on demand.

An admin may register a Bedrock API key on an access key (stored encrypted, ``app/crypto/envelope.py``,
bound to that key's id); requests made with that access key then call Bedrock with it as a bearer
token (``BedrockRuntime(..., bearer_token=...)``) instead of the task's AWS credentials.
Source: https://docs.aws.amazon.com/bedrock/latest/userguide/api-keys-use.html
"""

from __future__ import annotations

import logging
from typing import Any

from cachetools import TTLCache

from app.crypto.envelope import DecryptionError, bedrock_key_context
from app.errors import ApiError

log = logging.getLogger(__name__)
_MISSING: Any = object()  # not cached (a cached None means "no Bedrock key")


class BedrockKeys:
    """Per-access-key Bedrock API keys: decrypted on demand, cached in-process for ``ttl_s`` seconds.

    ``access_keys``: the access-key repository (``get(id) -> doc | None``); ``cipher``: the
    envelope cipher (``decrypt(envelope, context) -> bytes``)."""

    def __init__(self, access_keys: Any, cipher: Any, *, ttl_s: float = 300.0) -> None:
        self._keys, self._cipher = access_keys, cipher
        self._cache: TTLCache[str, str | None] = TTLCache(maxsize=10_000, ttl=ttl_s)

    async def bearer_for(self, access_key_id: str) -> str | None:
        """The plaintext Bedrock API key registered for this access key, or None (default AWS chain).
        Raises ApiError (500) when the stored key cannot be decrypted."""
        cached = self._cache.get(access_key_id, _MISSING)  # one lookup: an entry can expire between `in` and `[]`
        if cached is not _MISSING:
            return cached
        doc = await self._keys.get(access_key_id)
        envelope = (doc or {}).get("bedrock_key")
        token = None
        if envelope:
            try:
                token = (await self._cipher.decrypt(envelope, bedrock_key_context(access_key_id))).decode()
            except DecryptionError as exc:
                log.error("stored Bedrock API key for %s cannot be decrypted: %s", access_key_id, exc)
                raise ApiError("the Bedrock API key registered for this access key cannot be decrypted "
                               "(was PROXY_SECRET_KEY or the KMS key changed?); an admin must register it again") from None
        self._cache[access_key_id] = token
        return token

    def forget(self, access_key_id: str) -> None:
        """Drop the cached key (called when an admin changes or removes it)."""
        self._cache.pop(access_key_id, None)
