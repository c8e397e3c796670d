"""A deliberate over-estimate of input tokens for ``count_tokens`` when Bedrock's CountTokens fails.

Claude Code uses the count to decide when to compact; a low guess would overflow the context
window, a high one only compacts early. So every part is rounded up:
text and JSON: ceil(UTF-8 bytes / 3) (Claude averages ~3.5-4 bytes per token on English and code);
images: ceil(width * height / 750) from the image header (Anthropic's formula), at least 1,600 and
``IMAGE_MAX_TOKENS`` when the size cannot be read; PDFs: ``PDF_PAGE_TOKENS`` per page plus the text
rule over the raw bytes; plus fixed overheads per message, block and tool.
Sources: https://docs.anthropic.com/en/docs/build-with-claude/vision#evaluate-image-size,
https://docs.anthropic.com/en/docs/build-with-claude/pdf-support
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import struct
from typing import Any

BYTES_PER_TOKEN = 3
MESSAGE_OVERHEAD = 8  # role markers per turn (tokens)
BLOCK_OVERHEAD = 4  # per content block (tokens)
TOOL_OVERHEAD = 40  # per tool definition (tokens)
TOOLS_PREAMBLE = 500  # the tool-use system prompt Anthropic adds when tools are present (tokens)
REQUEST_OVERHEAD = 20
IMAGE_MIN_TOKENS = 1_600
IMAGE_MAX_TOKENS = 6_400  # high-resolution models; used when the size cannot be read
PDF_PAGE_TOKENS = 3_000  # text + page image, upper end of Anthropic's 1,500-3,000 per page


def estimate_input_tokens(params: dict[str, Any]) -> int:
    """Messages params (``system``, ``messages``, ``tools``) -> an estimated token count, never low."""
    total = REQUEST_OVERHEAD + _estimate(params.get("system"))
    for message in params.get("messages") or []:
        total += MESSAGE_OVERHEAD + _estimate(message.get("content"))
    tools = params.get("tools") or []
    if tools:
        total += TOOLS_PREAMBLE + sum(TOOL_OVERHEAD + _text_tokens(_json(t)) for t in tools)
    if params.get("tool_choice"):
        total += _text_tokens(_json(params["tool_choice"]))
    return total


def _estimate(content: Any) -> int:
    if content is None:
        return 0
    if isinstance(content, str):
        return _text_tokens(content)
    if isinstance(content, list):
        return sum(BLOCK_OVERHEAD + _estimate_block(b) for b in content)
    return _text_tokens(_json(content))


def _estimate_block(block: Any) -> int:
    if not isinstance(block, dict):
        return _text_tokens(_json(block))
    kind, source = block.get("type"), block.get("source") or {}
    if kind == "image":
        return image_tokens(_decode(source.get("data")) if source.get("type") == "base64" else None)
    if kind == "document" and source.get("type") == "base64" and source.get("media_type") == "application/pdf":
        raw = _decode(source.get("data")) or b""
        return max(1, raw.count(b"/Type /Page") + raw.count(b"/Type/Page")) * PDF_PAGE_TOKENS + _text_tokens(raw)
    if kind == "tool_result":
        content = block.get("content")
        return _text_tokens(block.get("tool_use_id", "")) + _estimate(content)
    return _text_tokens(_json(block))


def image_tokens(raw: bytes | None) -> int:
    """Image bytes -> ceil(w*h/750) tokens, at least IMAGE_MIN_TOKENS; IMAGE_MAX_TOKENS if unreadable."""
    size = image_size(raw or b"")
    if size is None:
        return IMAGE_MAX_TOKENS
    width, height = size
    return max(IMAGE_MIN_TOKENS, math.ceil(width * height / 750))


def image_size(raw: bytes) -> tuple[int, int] | None:
    """(width, height) in pixels from a PNG, GIF, JPEG or WebP header, or None."""
    try:
        if raw[:8] == b"\x89PNG\r\n\x1a\n":
            return struct.unpack(">II", raw[16:24])
        if raw[:6] in (b"GIF87a", b"GIF89a"):
            return struct.unpack("<HH", raw[6:10])
        if raw[:4] == b"RIFF" and raw[8:12] == b"WEBP":
            return _webp_size(raw)
        if raw[:2] == b"\xff\xd8":
            return _jpeg_size(raw)
    except struct.error:
        return None
    return None


def _webp_size(raw: bytes) -> tuple[int, int] | None:
    chunk = raw[12:16]
    if chunk == b"VP8X":
        return 1 + int.from_bytes(raw[24:27], "little"), 1 + int.from_bytes(raw[27:30], "little")
    if chunk == b"VP8 ":
        width, height = struct.unpack("<HH", raw[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L":
        bits = int.from_bytes(raw[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    return None


def _jpeg_size(raw: bytes) -> tuple[int, int] | None:
    i = 2
    while i + 9 < len(raw):
        if raw[i] != 0xFF:
            return None
        marker, length = raw[i + 1], struct.unpack(">H", raw[i + 2:i + 4])[0]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", raw[i + 5:i + 9])
            return width, height
        i += 2 + length
    return None


def _text_tokens(text: str | bytes) -> int:
    size = len(text) if isinstance(text, bytes) else len(text.encode("utf-8"))
    return math.ceil(size / BYTES_PER_TOKEN)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def _decode(data: Any) -> bytes | None:
    try:
        return base64.b64decode(data or "", validate=False)
    except (binascii.Error, ValueError, TypeError):
        return None
