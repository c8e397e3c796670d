"""app/bedrock/tokens.py: the estimate is never below a plain bytes/4 count and reads image sizes."""

from __future__ import annotations

import base64
import struct
import zlib

from app.bedrock.tokens import IMAGE_MAX_TOKENS, IMAGE_MIN_TOKENS, estimate_input_tokens, image_size, image_tokens


def _png(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return b"\x89PNG\r\n\x1a\n" + chunk


def test_text_is_over_estimated() -> None:
    text = "The quick brown fox jumps over the lazy dog. " * 100
    params = {"system": "sys", "messages": [{"role": "user", "content": text}]}
    assert estimate_input_tokens(params) >= len(text.encode()) / 3


def test_tools_add_their_schema_and_preamble() -> None:
    base = {"messages": [{"role": "user", "content": "hi"}]}
    with_tools = {**base, "tools": [{"name": "Read", "input_schema": {"type": "object", "properties": {"p": {"type": "string"}}}}]}
    assert estimate_input_tokens(with_tools) > estimate_input_tokens(base) + 500


def test_image_size_from_headers() -> None:
    assert image_size(_png(1000, 500)) == (1000, 500)
    assert image_size(b"GIF89a" + struct.pack("<HH", 30, 40)) == (30, 40)
    jpeg = b"\xff\xd8" + b"\xff\xe0" + struct.pack(">H", 4) + b"JF" + b"\xff\xc0" + struct.pack(">HBHH", 11, 8, 600, 800) + b"\x00" * 8
    assert image_size(jpeg) == (800, 600)
    assert image_size(b"nonsense") is None


def test_image_tokens_use_anthropics_formula_with_bounds() -> None:
    assert image_tokens(_png(2000, 2000)) == 5334  # ceil(2000*2000/750)
    assert image_tokens(_png(10, 10)) == IMAGE_MIN_TOKENS
    assert image_tokens(b"garbage") == IMAGE_MAX_TOKENS


def test_images_in_messages_and_tool_results_count() -> None:
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                         "data": base64.b64encode(_png(1500, 1500)).decode()}}
    params = {"messages": [{"role": "user", "content": [image, {"type": "tool_result", "tool_use_id": "t", "content": [image]}]}]}
    assert estimate_input_tokens(params) >= 2 * 3000


def test_pdf_counts_pages() -> None:
    pdf = b"%PDF-1.4 " + b"<< /Type /Page >> " * 3
    doc = {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": base64.b64encode(pdf).decode()}}
    assert estimate_input_tokens({"messages": [{"role": "user", "content": [doc]}]}) >= 9000
