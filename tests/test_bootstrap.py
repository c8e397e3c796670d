"""app/bootstrap.py: the URLs ``serve`` prints for a wildcard host, and the embedded banner."""

from __future__ import annotations

from app.bootstrap import embedded_banner, local_addresses, reachable_urls


def test_wildcard_host_lists_the_hostname_addresses_then_loopback() -> None:
    urls = reachable_urls("0.0.0.0", 8080, hostname="devbox", addresses=["10.1.2.3", "fd00::2"])
    assert urls == ["http://devbox:8080", "http://10.1.2.3:8080", "http://127.0.0.1:8080"]  # 0.0.0.0: IPv4 only
    both = reachable_urls("::", 8080, hostname="devbox", addresses=["10.1.2.3", "fd00::2"])
    assert "http://[fd00::2]:8080" in both and both[0] == "http://devbox:8080"


def test_a_named_host_is_used_as_is_and_localhost_names_are_skipped() -> None:
    assert reachable_urls("127.0.0.1", 9000) == ["http://127.0.0.1:9000"]
    assert reachable_urls("proxy.internal", 9000) == ["http://proxy.internal:9000"]
    assert reachable_urls("0.0.0.0", 8080, hostname="localhost", addresses=[]) == ["http://127.0.0.1:8080"]


def test_local_addresses_are_never_loopback_or_link_local() -> None:
    for address in local_addresses():
        assert not address.startswith(("127.", "fe80:")) and address != "::1"


def test_banner_uses_the_reachable_url_and_points_developers_to_their_page() -> None:
    text = embedded_banner(base_url="http://devbox:8080", access_key="sk-ccp-x", admin_username="admin",
                           admin_password="pw")
    assert "export ANTHROPIC_BASE_URL=http://devbox:8080" in text
    assert "http://devbox:8080/ui/me" in text and "127.0.0.1" not in text
