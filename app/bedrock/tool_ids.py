"""Tool-use ids: Anthropic takes any string, Bedrock only ``ToolUseId`` = ``[a-zA-Z0-9_-]+``, 1..64 chars.

``to_bedrock_id`` (request: ``tool_use.id``, ``tool_result.tool_use_id``) and ``from_bedrock_id``
(response and stream: ``toolUse.toolUseId``) are pure and inverse: ``from_bedrock_id(to_bedrock_id(x))
== x`` for every id whose encoding fits in 64 characters (any id up to 44 UTF-8 bytes).

- An id Bedrock accepts, not starting with ``ENCODED_PREFIX`` / ``DIGEST_PREFIX``, passes unchanged
  (every ``toolu_…`` id Anthropic or Bedrock mints).
- Any other id becomes ``ENCODED_PREFIX + base64url(utf-8, no padding)``; ids that already start with
  one of the prefixes are encoded too, so two different ids never map to the same Bedrock id.
- An id whose encoding would exceed 64 characters becomes ``DIGEST_PREFIX + base64url(sha256)[:43]``:
  the same id always maps the same way inside and across requests, but it cannot be decoded. That is
  enough, because Converse never echoes a request's ids back: the ids in a response are new ones
  Bedrock minted, and those pass ``from_bedrock_id`` unchanged.
Source: botocore bedrock-runtime service-2.json ``ToolUseId`` (min 1, max 64, pattern ``[a-zA-Z0-9_-]+``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re

TOOL_USE_ID = re.compile(r"[a-zA-Z0-9_-]{1,64}")
MAX_LENGTH = 64
ENCODED_PREFIX = "ccpx_"  # claude-code-proxy, hex-free so a Bedrock "tooluse_…" id never starts with it
DIGEST_PREFIX = "ccpy_"


def to_bedrock_id(tool_use_id: str) -> str:
    """Any Anthropic tool-use id -> an id Bedrock accepts (``TOOL_USE_ID``); deterministic."""
    if TOOL_USE_ID.fullmatch(tool_use_id) and not tool_use_id.startswith((ENCODED_PREFIX, DIGEST_PREFIX)):
        return tool_use_id
    raw = tool_use_id.encode("utf-8", "surrogatepass")
    encoded = ENCODED_PREFIX + base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")
    if len(encoded) <= MAX_LENGTH:
        return encoded
    digest = base64.urlsafe_b64encode(hashlib.sha256(raw).digest()).decode("ascii").rstrip("=")
    return (DIGEST_PREFIX + digest)[:MAX_LENGTH]


def from_bedrock_id(bedrock_id: str) -> str:
    """A Bedrock tool-use id -> the client's id: the inverse of ``to_bedrock_id`` for encoded ids,
    every other id unchanged (digest ids stay as they are: they cannot be decoded)."""
    if not bedrock_id.startswith(ENCODED_PREFIX):
        return bedrock_id
    body = bedrock_id[len(ENCODED_PREFIX):]
    try:
        original = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode("utf-8", "surrogatepass")
    except (binascii.Error, ValueError):
        return bedrock_id
    return original if to_bedrock_id(original) == bedrock_id else bedrock_id
