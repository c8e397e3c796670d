"""Start-up decisions about secrets and the embedded store's demo data.

Embedded store (no ``PROXY_MONGODB_URL``): missing ``PROXY_SECRET_KEY`` / ``PROXY_ADMIN_PASSWORD``
are generated for this run, a demo user with an access key is created, and a ready-to-paste block
is printed. Real store: missing secrets are a start-up error that says what to set.
"""

from __future__ import annotations

import ipaddress
import secrets
import socket
import sys
from dataclasses import dataclass

from app.config import Settings


class ConfigError(RuntimeError):
    """A setting is missing or wrong; the message says which and what to set."""


@dataclass(frozen=True)
class Secrets:
    secret_key: bytes
    admin_password: str
    generated: tuple[str, ...]  # names of the settings generated for this run


def resolve_secrets(settings: Settings) -> Secrets:
    """The secret key and admin password to use; raises ConfigError when a real store lacks them."""
    secret = settings.secret_key.get_secret_value() if settings.secret_key else None
    password = settings.admin_password.get_secret_value() if settings.admin_password else None
    missing = [name for name, value in (("PROXY_SECRET_KEY", secret), ("PROXY_ADMIN_PASSWORD", password))
               if not value]
    if missing and not settings.embedded_store:
        raise ConfigError(
            f"{' and '.join(missing)} must be set when PROXY_MONGODB_URL points at a real database "
            "(keys hashed with a throwaway secret would stop working at the next restart). "
            "Generate one with: python -c 'import secrets; print(secrets.token_urlsafe(48))'")
    if secret is not None and len(secret) < 32:
        raise ConfigError("PROXY_SECRET_KEY must be at least 32 characters")
    return Secrets(secret_key=(secret or secrets.token_urlsafe(48)).encode(),
                   admin_password=password or secrets.token_urlsafe(18),
                   generated=tuple(missing))


WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def local_addresses() -> list[str]:
    """This machine's non-loopback IP addresses: those its hostname resolves to, plus the source
    address of the default route (a UDP ``connect`` sends no packet). Best effort: [] offline."""
    found: list[str] = []
    try:
        infos = socket.getaddrinfo(socket.gethostname(), None, type=socket.SOCK_STREAM)
        found += [str(info[4][0]) for info in infos]
    except OSError:
        pass
    for family, probe in ((socket.AF_INET, "192.0.2.1"), (socket.AF_INET6, "2001:db8::1")):
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as udp:
                udp.connect((probe, 9))
                found.append(str(udp.getsockname()[0]))
        except OSError:
            pass
    out: list[str] = []
    for address in found:
        try:
            ip = ipaddress.ip_address(address.split("%")[0])
        except ValueError:
            continue
        if not (ip.is_loopback or ip.is_link_local or ip.is_unspecified) and str(ip) not in out:
            out.append(str(ip))
    return out


def reachable_urls(host: str, port: int, *, hostname: str | None = None,
                   addresses: list[str] | None = None) -> list[str]:
    """The URLs to print for ``serve --host HOST --port PORT``: for a wildcard host, the machine's
    hostname, its non-loopback addresses, then ``127.0.0.1`` (first = what others most likely
    reach); otherwise just that host. ``hostname``/``addresses`` override the lookups (tests)."""
    if host not in WILDCARD_HOSTS:
        return [_url(host, port)]
    name = socket.gethostname() if hostname is None else hostname
    ips = local_addresses() if addresses is None else addresses
    if host == "0.0.0.0":  # IPv4 only
        ips = [ip for ip in ips if ":" not in ip]
    urls = [_url(name, port)] if name and name != "localhost" else []
    urls += [_url(ip, port) for ip in ips]
    urls.append(_url("127.0.0.1", port))
    return list(dict.fromkeys(urls))


def embedded_banner(*, base_url: str, access_key: str | None, admin_username: str,
                    admin_password: str | None) -> str:
    """The loud notice and ready-to-paste block printed at start in embedded mode. ``base_url`` is
    ``PROXY_PUBLIC_BASE_URL``, or what ``serve`` chose with :func:`reachable_urls`."""
    lines = [
        "=" * 78,
        "claude-code-proxy: EMBEDDED IN-MEMORY STORE - every user, key and usage record is",
        "LOST ON EXIT. Set PROXY_MONGODB_URL to use MongoDB / DocumentDB.",
        "=" * 78,
    ]
    if access_key:
        lines += ["", "# Claude Code, with your own Anthropic credential (recommended form):",
                  f"export ANTHROPIC_BASE_URL={base_url}",
                  f'export ANTHROPIC_CUSTOM_HEADERS="x-proxy-key: {access_key}"',
                  "export ANTHROPIC_API_KEY=sk-ant-...   # or ANTHROPIC_AUTH_TOKEN=<subscription token>",
                  "", "# or, with the key in the URL:",
                  f"export ANTHROPIC_BASE_URL={base_url}/ak/{access_key}"]
    lines += ["", f"# Developers see their own usage at {base_url}/ui/me (paste the access key)"]
    if admin_password:
        lines += ["", f"# Admin (generated for this run): {admin_username} / {admin_password}",
                  f"#   dashboard: {base_url}/ui   API docs: {base_url}/docs (PROXY_API_DOCS_ENABLED=true)"]
    lines.append("=" * 78)
    return "\n".join(lines)


def print_banner(text: str) -> None:
    print(text, file=sys.stdout, flush=True)
