"""Connection strings and client snippets (pure; no Pulumi).

The DocumentDB URL follows AWS's "Connecting programmatically" guide
(docs.aws.amazon.com/documentdb/latest/developerguide/connect_programmatically.html): TLS with the RDS
CA bundle baked into the image, ``replicaSet=rs0``, ``readPreference=secondaryPreferred`` and
``retryWrites=false`` (DocumentDB does not support retryable writes).
"""

from __future__ import annotations

from urllib.parse import quote_plus

#: Where the Dockerfile puts the RDS global CA bundle.
CA_BUNDLE_PATH = "/srv/certs/global-bundle.pem"
DOCDB_PORT = 27017


def mongodb_options() -> str:
    """The DocumentDB URL options (``PROXY_MONGODB_OPTIONS``): TLS with the baked-in CA bundle,
    the ``rs0`` replica set, reads from replicas when there are any, no retryable writes."""
    return "&".join(
        (
            "tls=true",
            f"tlsCAFile={CA_BUNDLE_PATH}",
            "replicaSet=rs0",
            "readPreference=secondaryPreferred",
            "retryWrites=false",
        )
    )


def mongodb_url(username: str, password: str, host: str, port: int = DOCDB_PORT) -> str:
    """``mongodb://user:pass@host:port/?tls=true&...`` for a DocumentDB cluster endpoint.

    ``username`` and ``password`` are percent-encoded (RFC 3986 via ``quote_plus``), so any character
    is safe. The database name is not in the URL: the app reads ``PROXY_MONGODB_DATABASE``.
    """
    return f"mongodb://{quote_plus(username)}:{quote_plus(password)}@{host}:{port}/?{mongodb_options()}"


def base_url(https: bool, domain_name: str | None, alb_dns_name: str) -> str:
    """How clients reach the proxy: ``https://<domain>`` with a certificate, else ``http://<domain or ALB>``."""
    host = domain_name or alb_dns_name
    return f"{'https' if https else 'http'}://{host}"


def claude_code_env(proxy_base_url: str) -> str:
    """Shell lines that point Claude Code at the proxy; the key placeholder is for the user's own key."""
    return f'export ANTHROPIC_BASE_URL={proxy_base_url}\nexport ANTHROPIC_CUSTOM_HEADERS="x-proxy-key: <your key>"\n'
