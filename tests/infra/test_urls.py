"""Connection string and client snippet."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from infra.urls import CA_BUNDLE_PATH, base_url, claude_code_env, mongodb_url


def test_mongodb_url_has_documentdb_options() -> None:
    url = mongodb_url("proxymaster", "pw", "db.cluster-x.us-east-1.docdb.amazonaws.com")
    parts = urlsplit(url)
    assert parts.scheme == "mongodb"
    assert parts.hostname == "db.cluster-x.us-east-1.docdb.amazonaws.com" and parts.port == 27017
    assert parse_qs(parts.query) == {
        "tls": ["true"],
        "tlsCAFile": [CA_BUNDLE_PATH],
        "replicaSet": ["rs0"],
        "readPreference": ["secondaryPreferred"],
        "retryWrites": ["false"],
    }


def test_mongodb_url_escapes_credentials() -> None:
    url = mongodb_url("us@er", "p:a/ss%w@rd", "h")
    assert url.startswith("mongodb://us%40er:p%3Aa%2Fss%25w%40rd@h:27017/?")


def test_base_url() -> None:
    assert base_url(True, "proxy.example.com", "alb.elb.amazonaws.com") == "https://proxy.example.com"
    assert base_url(False, None, "alb.elb.amazonaws.com") == "http://alb.elb.amazonaws.com"
    assert base_url(False, "proxy.example.com", "alb") == "http://proxy.example.com"


def test_claude_code_env_snippet() -> None:
    lines = claude_code_env("https://proxy.example.com").splitlines()
    assert lines == [
        "export ANTHROPIC_BASE_URL=https://proxy.example.com",
        'export ANTHROPIC_CUSTOM_HEADERS="x-proxy-key: <your key>"',
    ]
