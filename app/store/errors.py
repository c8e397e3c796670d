"""Which store failures are worth retrying: the one place the usage write path classifies errors.

``is_transient(exc)`` answers "would the same write succeed later, unchanged?":

- **Transient** (retry the same batch with backoff; it is idempotent): the driver could not reach
  or keep a server (``ConnectionFailure``: ``AutoReconnect``, ``NotPrimaryError``,
  ``NetworkTimeout``, ``ServerSelectionTimeoutError``, ``WaitQueueTimeoutError``), timeouts
  (``ExecutionTimeout``, ``WTimeoutError``, ``WriteConcernError``, ``TimeoutError``, ``OSError``),
  errors labelled ``RetryableWriteError`` / ``TransientTransactionError``, and every other store
  error that does not say the *document* is wrong (``OperationFailure`` such as Unauthorized or a
  full disk: the operator fixes the store and the backlog lands; diverting every event would be
  worse). ``BulkWriteError``/``WriteError`` are transient when none of their per-document errors
  is a data error.
- **Not transient** (a data error: this batch will never be written as it is; isolate the bad
  event): BSON encoding failures (``InvalidDocument``, ``DocumentTooLarge``, ``InvalidStringData``,
  ``UnicodeError``, ``OverflowError``), ``ValueError``, ``TypeError``, a write error whose server
  code says the document or update is invalid (``DATA_ERROR_CODES``), and any exception that is not
  a store error at all (a bug in the event's path: retrying it forever would jam the queue).

Codes: https://www.mongodb.com/docs/manual/reference/error-codes/
"""

from __future__ import annotations

from typing import Any

from pymongo.errors import (
    BulkWriteError,
    ConnectionFailure,
    ExecutionTimeout,
    OperationFailure,
    PyMongoError,
    WriteConcernError,
    WriteError,
    WTimeoutError,
)

TRANSIENT_LABELS = ("RetryableWriteError", "TransientTransactionError")
DATA_ERROR_CODES = frozenset({
    2,      # BadValue
    9,      # FailedToParse
    14,     # TypeMismatch
    16,     # InvalidLength
    17,     # ProtocolError
    22,     # InvalidBSON
    52,     # DollarPrefixedFieldName
    55,     # InvalidDBRef
    56,     # EmptyFieldName
    57,     # DottedFieldName
    66,     # ImmutableField
    121,    # DocumentValidationFailure
    10334,  # BSONObjectTooLarge
    17280,  # KeyTooLong
    17419,  # document after update larger than 16 MB
})


def _write_error_codes(exc: PyMongoError) -> list[int | None]:
    details: Any = getattr(exc, "details", None) or {}
    if isinstance(exc, BulkWriteError):
        return [err.get("code") for err in details.get("writeErrors", [])]
    return [getattr(exc, "code", None)]


def is_data_error_code(code: object) -> bool:
    return code in DATA_ERROR_CODES


def is_transient(exc: BaseException) -> bool:
    """True when retrying the same write unchanged may succeed (see the module docstring)."""
    if isinstance(exc, (ConnectionFailure, ExecutionTimeout, WTimeoutError, WriteConcernError,
                        TimeoutError, ConnectionError)):
        return True
    if isinstance(exc, PyMongoError):
        if any(exc.has_error_label(label) for label in TRANSIENT_LABELS):
            return True
        if isinstance(exc, (WriteError, BulkWriteError)):
            return not any(is_data_error_code(code) for code in _write_error_codes(exc))
        if isinstance(exc, OperationFailure):
            return not is_data_error_code(exc.code)
        return True  # the store is unusable for now (InvalidOperation, ConfigurationError...)
    if isinstance(exc, OSError):
        return True
    return False  # BSON encoding (InvalidDocument, DocumentTooLarge), Unicode, Overflow, Value, Type...


class UnwrittenEvents(ValueError):
    """A batch writer stored part of a batch (possibly none of it) and can never store the rest as
    it is. ``rejected``: ``(event, reason)`` for each event not written. ``isolated``: True when each
    rejected event was found bad on its own (so it can be dead-lettered at once); False when the set
    only *contains* a bad event (the caller splits it and writes the halves again). Not transient."""

    def __init__(self, rejected: list[tuple[Any, str]], *, isolated: bool) -> None:
        super().__init__(f"{len(rejected)} usage events not written: {rejected[0][1] if rejected else ''}")
        self.rejected = rejected
        self.isolated = isolated

    @property
    def events(self) -> list[Any]:
        return [event for event, _ in self.rejected]


def describe(exc: BaseException, limit: int = 500) -> str:
    """``"Type: message"`` for a log line or a stored reason: ASCII only (any character escaped),
    at most ``limit`` characters, never raises."""
    try:
        text = f"{type(exc).__name__}: {exc}"
    except Exception:  # noqa: BLE001 - a broken __str__
        text = type(exc).__name__
    return ascii(text)[1:-1][:limit]
