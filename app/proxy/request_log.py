"""The request log line: one JSON line per finished proxy request (logger ``claude_code_proxy.requests``),
written in batches.

``RequestLog.add(fields)`` keeps the line's fields (``outcome.log_fields``: ids, model, provider,
status, tokens, times; never a key, a credential or prompt text) with the time the request finished;
a background task (``start()``) writes the kept lines every ``interval_s`` seconds, or as soon as
``batch_size`` are waiting, through the standard ``logging`` machinery: same logger, handlers, level
and JSON format as an inline ``log.info``, and each line's ``time`` is when its request finished.
``aclose()`` (shutdown) writes what is left. While the task is not running (unit tests, a
Forwarder built without the app's lifespan) every line is written at once.

Why: on the bench's 2-vCPU machine one inline ``log.info`` cost 60-80 us of the proxy's CPU per
request under load (about 12 % of a streamed request), against 11-14 us for the same call in a
tight loop; written in batches the same lines cost ~15-20 us (bench/README.md, issue 16).
The trade: a process killed with SIGKILL loses the lines of its last ``interval_s`` seconds (the
usage events, which are the record, are not affected: app/usage/recorder.py).
"""

from __future__ import annotations

import json
import logging
import time
from collections import deque
from typing import Any

from app.logs import PREFORMATTED_FIELDS
from app.tasks import Periodic

INTERVAL_S = 0.5
BATCH_SIZE = 256


class RequestLog:
    def __init__(self, logger: logging.Logger, *, interval_s: float = INTERVAL_S,
                 batch_size: int = BATCH_SIZE) -> None:
        self._logger = logger
        self._batch_size = batch_size
        self._waiting: deque[tuple[dict[str, Any], float]] = deque()
        self._writer = Periodic("request-log", interval_s, self._write_async)

    @property
    def enabled(self) -> bool:
        """The logger writes INFO lines (checked per request: the level can change at run time)."""
        return self._logger.isEnabledFor(logging.INFO)

    def add(self, fields: dict[str, Any]) -> None:
        """Keep one request's line (``fields``: JSON-serialisable values) stamped with the time now;
        written at once if the writer task is not running. Never raises for a bad handler."""
        self._waiting.append((fields, time.time()))
        if not self._writer.running:
            self.write()
        elif len(self._waiting) >= self._batch_size:
            self._writer.wake()

    def write(self) -> None:
        """Write every waiting line now, oldest first."""
        logger, waiting = self._logger, self._waiting
        while waiting:
            fields, finished = waiting.popleft()
            record = logger.makeRecord(logger.name, logging.INFO, "", 0, "request", (), None,
                                       extra={PREFORMATTED_FIELDS: json.dumps(fields)})
            record.created, record.msecs = finished, (finished - int(finished)) * 1000
            logger.handle(record)

    async def _write_async(self) -> None:
        self.write()

    def start(self) -> None:
        """Start the writer task (needs the running event loop)."""
        self._writer.start()

    async def aclose(self) -> None:
        """Stop the writer task and write what is left."""
        await self._writer.stop()
        self.write()
