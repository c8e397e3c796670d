"""Logging: one JSON object per line (python-json-logger), configured by the CLI, never at import.

Request lines come from ``claude_code_proxy.requests`` (``proxy/request_log.py``, in batches) and carry ids,
model, provider, status, token counts and latency: never an access key, a client credential or
prompt text. uvicorn's own access log is off, because it would print ``/ak/<key>/...`` paths.
uvicorn adds a ``color_message`` copy of its messages with ANSI colour codes for its own console
formatter; :class:`DropColorMessage` removes it, so JSON lines carry only ``message``.
"""

from __future__ import annotations

import json
import logging
import sys

from pythonjsonlogger.json import JsonFormatter


# Record attributes that only colour consoles use (uvicorn's ``extra={"color_message": ...}``).
CONSOLE_ONLY_FIELDS = ("color_message",)
# A record attribute holding the line's own fields as JSON object text, already encoded (the request
# line, once per request: issue 16). The formatter splices it in; the line is the same as with `extra`.
PREFORMATTED_FIELDS = "fields_json"


class JsonLineFormatter(JsonFormatter):
    """python-json-logger's formatter, plus a fast path for records carrying ``PREFORMATTED_FIELDS``."""

    def format(self, record: logging.LogRecord) -> str:
        fields = record.__dict__.get(PREFORMATTED_FIELDS)
        if fields is None or record.exc_info or record.stack_info:
            return super().format(record)
        head = json.dumps({"time": self.formatTime(record, self.datefmt), "level": record.levelname,
                           "name": record.name, "message": record.getMessage()})
        return head if fields == "{}" else head[:-1] + ", " + fields[1:]


class DropColorMessage(logging.Filter):
    """Removes uvicorn's ANSI-coloured duplicate of the message before the JSON formatter sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name in CONSOLE_ONLY_FIELDS:
            record.__dict__.pop(name, None)
        return True


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(DropColorMessage())
    handler.setFormatter(JsonLineFormatter("%(asctime)s %(levelname)s %(name)s %(message)s",
                                       rename_fields={"asctime": "time", "levelname": "level"}))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True
    # No line carries the caller's file/line, thread or process (the format above and the request
    # line's fields): skip collecting them for every record, as the logging docs' "Optimization"
    # section describes (https://docs.python.org/3/howto/logging.html#optimization); ~3 µs per line.
    logging._srcfile = None  # type: ignore[attr-defined]
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
