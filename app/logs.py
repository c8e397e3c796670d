"""Logging: one JSON object per line (python-json-logger), configured by the CLI, never at import.

Request lines come from ``claude_code_proxy.requests`` (see ``proxy/forward.py``) and carry ids,
model, provider, status, token counts and latency: never an access key, a client credential or
prompt text. uvicorn's own access log is off, because it would print ``/ak/<key>/...`` paths.
"""

from __future__ import annotations

import logging
import sys

from pythonjsonlogger.json import JsonFormatter


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s",
                                       rename_fields={"asctime": "time", "levelname": "level"}))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True
