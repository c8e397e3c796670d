"""A pure encoder for AWS event-stream messages (``application/vnd.amazon.eventstream``), the
framing Bedrock's ConverseStream answers in, so the fake Bedrock speaks the real wire format.

One message, all integers big-endian::

    total_length u32 | headers_length u32 | prelude_crc u32      (CRC32 of the first 8 bytes)
    headers: name_length u8, name (UTF-8), value_type u8 (7 = string), value_length u16, value
    payload (JSON bytes)
    message_crc u32                                              (CRC32 of everything before it)

Source: https://docs.aws.amazon.com/AmazonS3/latest/API/RESTSelectObjectAppendix.html (the same
framing), decoded by ``botocore.eventstream.EventStreamBuffer``. Blob members (e.g.
``reasoningContent.redactedContent``) travel base64-encoded inside the JSON payload, as the real
service sends them; pass them here as ``bytes`` and they are encoded for you.
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
from typing import Any

STRING_HEADER_TYPE = 7
PRELUDE_LENGTH = 12  # total_length + headers_length + prelude_crc
MESSAGE_CRC_LENGTH = 4


def encode_headers(headers: dict[str, str]) -> bytes:
    """String-typed headers in order. Raises ValueError for a name over 255 bytes."""
    out = bytearray()
    for name, value in headers.items():
        name_bytes, value_bytes = name.encode(), value.encode()
        if len(name_bytes) > 255:
            raise ValueError(f"header name too long: {name!r}")
        out += struct.pack(">B", len(name_bytes)) + name_bytes
        out += struct.pack(">BH", STRING_HEADER_TYPE, len(value_bytes)) + value_bytes
    return bytes(out)


def encode_message(headers: dict[str, str], payload: bytes) -> bytes:
    """One framed message: prelude, prelude CRC, headers, payload, message CRC."""
    header_bytes = encode_headers(headers)
    total_length = PRELUDE_LENGTH + len(header_bytes) + len(payload) + MESSAGE_CRC_LENGTH
    prelude = struct.pack(">II", total_length, len(header_bytes))
    prelude += struct.pack(">I", binascii.crc32(prelude) & 0xFFFFFFFF)
    body = prelude + header_bytes + payload
    return body + struct.pack(">I", binascii.crc32(body) & 0xFFFFFFFF)


def _json_default(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode("ascii")
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def json_payload(payload: dict[str, Any]) -> bytes:
    """Compact JSON; ``bytes`` values become base64 strings (Smithy blobs in JSON)."""
    return json.dumps(payload, separators=(",", ":"), default=_json_default).encode()


def encode_event(event_type: str, payload: dict[str, Any]) -> bytes:
    """An ``event`` message, e.g. ``encode_event("contentBlockDelta", {"contentBlockIndex": 0,
    "delta": {"text": "Hi"}})``; botocore parses it as ``{"contentBlockDelta": payload}``."""
    return encode_message({":event-type": event_type, ":content-type": "application/json",
                           ":message-type": "event"}, json_payload(payload))


def encode_exception(exception_type: str, message: str) -> bytes:
    """An ``exception`` message, e.g. ``encode_exception("throttlingException", "Too many tokens")``.

    ``exception_type`` is the stream member name (camelCase, as in ConverseStreamOutput);
    botocore raises ``EventStreamError`` with that code and ``message``.
    """
    return encode_message({":exception-type": exception_type, ":content-type": "application/json",
                           ":message-type": "exception"}, json_payload({"message": message}))
