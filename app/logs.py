"""Logging: one JSON object per line (python-json-logger), configured by the CLI, never at import.

Request lines come from ``claude_code_proxy.requests`` (see ``proxy/forward.py``) and carry ids,
model, provider, status, token counts and latency: never an access key, a client credential or
prompt text. uvicorn's own access log is off, because it would print ``/ak/<key>/...`` paths.
uvicorn adds a ``color_message`` copy of its messages with ANSI colour codes for its own console
formatter; :class:`DropColorMessage` removes it, so JSON lines carry only ``message``.
"""

from __future__ import annotations

import logging
import sys

from pythonjsonlogger.json import JsonFormatter


# Record attributes that only colour consoles use (uvicorn's ``extra={"color_message": ...}``).
CONSOLE_ONLY_FIELDS = ("color_message",)


class DropColorMessage(logging.Filter):
    """Removes uvicorn's ANSI-coloured duplicate of the message before the JSON formatter sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name in CONSOLE_ONLY_FIELDS:
            record.__dict__.pop(name, None)
        return True


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(DropColorMessage())
    handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s",
                                       rename_fields={"asctime": "time", "levelname": "level"}))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True
