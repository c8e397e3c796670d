"""app/store/mongo.py: URL redaction, error descriptions, ping and the start-up wait against a
port where nothing listens."""

from __future__ import annotations

import pytest
from pymongo.errors import ServerSelectionTimeoutError

from app.store.mongo import StoreUnreachable, describe_store_error, open_store, redact_url, wait_until_reachable

UNREACHABLE = "mongodb://app:s3cr%2Ft@127.0.0.1:1/proxy?serverSelectionTimeoutMS=200&tls=false"


def test_redact_url_masks_passwords_and_secret_options() -> None:
    assert redact_url(UNREACHABLE) == "mongodb://app:****@127.0.0.1:1/proxy?serverSelectionTimeoutMS=200&tls=false"
    assert redact_url("mongodb://h1:27017,h2:27017/?replicaSet=rs0") == "mongodb://h1:27017,h2:27017/?replicaSet=rs0"
    assert redact_url("mongodb+srv://u:p:q@cluster.example.com/?tlsCertificateKeyFilePassword=pw&tls=true") == (
        "mongodb+srv://u:****@cluster.example.com/?tlsCertificateKeyFilePassword=****&tls=true")


def test_describe_store_error_is_one_short_line() -> None:
    exc = ServerSelectionTimeoutError("127.0.0.1:1: [Errno 111] Connection refused (configured timeouts: "
                                      "socketTimeoutMS: 20000.0ms), Timeout: 0.2s, Topology Description: "
                                      "<TopologyDescription id: 1, topology_type: Unknown, servers: [...]>")
    text = describe_store_error(exc)
    assert text.startswith("ServerSelectionTimeoutError: 127.0.0.1:1: [Errno 111] Connection refused")
    assert "Topology" not in text and "\n" not in text


async def test_ping_and_wait_against_nothing_listening() -> None:
    store = open_store(UNREACHABLE, "proxy")
    try:
        assert await store.ping(timeout_s=5) is False
        notices: list[str] = []
        with pytest.raises(StoreUnreachable) as failed:
            await wait_until_reachable(store, UNREACHABLE, timeout_s=1.0, on_first_failure=notices.append)
    finally:
        store.close()
    message = str(failed.value)
    assert "mongodb://app:****@127.0.0.1:1" in message and "s3cr" not in message
    assert "ServerSelectionTimeoutError" in message and "PROXY_MONGODB_URL" in message and "\n" not in message
    assert len(notices) == 1 and "retrying" in notices[0] and "s3cr" not in notices[0]
