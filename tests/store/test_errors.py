"""is_transient: store trouble is retried, data errors are isolated (app/store/errors.py)."""

from __future__ import annotations

import pytest
from bson.errors import InvalidDocument, InvalidStringData
from pymongo.errors import (
    AutoReconnect,
    BulkWriteError,
    ConfigurationError,
    DocumentTooLarge,
    ExecutionTimeout,
    NetworkTimeout,
    NotPrimaryError,
    OperationFailure,
    ServerSelectionTimeoutError,
    WaitQueueTimeoutError,
    WriteConcernError,
    WriteError,
    WTimeoutError,
)

from app.store.errors import UnwrittenEvents, describe, is_transient


def labelled(label: str) -> OperationFailure:
    return OperationFailure("x", code=1234, details={"errorLabels": [label]})


TRANSIENT = [
    AutoReconnect("down"), NotPrimaryError("stepped down"), NetworkTimeout("slow"),
    ServerSelectionTimeoutError("no server"), WaitQueueTimeoutError("pool"), ExecutionTimeout("t", code=50),
    WTimeoutError("w", code=64), WriteConcernError("wc", code=100), labelled("RetryableWriteError"),
    labelled("TransientTransactionError"), OperationFailure("not authorized", code=13),
    OperationFailure("no space", code=14031), WriteError("interrupted", code=11602),
    BulkWriteError({"writeErrors": [{"index": 0, "code": 11000}], "writeConcernErrors": []}),
    ConfigurationError("client closed"), TimeoutError(), ConnectionResetError(),
]
NOT_TRANSIENT = [
    InvalidDocument("cannot encode object"), DocumentTooLarge("17 MB"), InvalidStringData("bad"),
    UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed"), OverflowError("8-byte ints"),
    ValueError("x"), TypeError("x"), WriteError("Document failed validation", code=121),
    OperationFailure("BSONObjectTooLarge", code=10334),
    BulkWriteError({"writeErrors": [{"index": 0, "code": 11000}, {"index": 3, "code": 121}],
                    "writeConcernErrors": []}),
    UnwrittenEvents([(object(), "r")], isolated=True), RuntimeError("a bug"), KeyError("field"),
]


@pytest.mark.parametrize("exc", TRANSIENT, ids=lambda e: type(e).__name__)
def test_store_trouble_is_transient(exc: BaseException) -> None:
    assert is_transient(exc)


@pytest.mark.parametrize("exc", NOT_TRANSIENT, ids=lambda e: type(e).__name__)
def test_data_errors_are_not(exc: BaseException) -> None:
    assert not is_transient(exc)


def test_describe_is_ascii_and_bounded() -> None:
    text = describe(UnicodeEncodeError("utf-8", "claude-\ud800", 7, 8, "surrogates not allowed"))
    assert text.startswith("UnicodeEncodeError: ") and text.isascii()
    assert len(describe(ValueError("é" * 5000))) == 500
