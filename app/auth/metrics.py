"""Prometheus counters for access-key lookups during store outages and for admin logins, read from
the app's current resolver and AdminAuth (``services.resolver``, ``services.admin_auth``) at scrape
time (registered on the app's registry by app/main.py).

- ``claude_proxy_key_lookup_store_failures_total``: access-key lookups the store failed
- ``claude_proxy_key_lookups_stale_total``: keys answered from their last good lookup (store down)
- ``claude_proxy_key_lookups_unavailable_total``: 503s for keys that could not be checked
- ``claude_proxy_admin_logins_total{outcome}``: ``ok``, ``failed`` (wrong password), ``refused`` (429)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from weakref import WeakKeyDictionary

from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

PREFIX = "claude_proxy_"
_ATTACHED: WeakKeyDictionary[Any, AuthCollector] = WeakKeyDictionary()


def watch_auth(registry: Any, services: Any) -> None:
    """Export ``services``' auth counters on ``registry``; a later call for the same registry (the
    app's lifespan run again) switches to the new services instead of registering twice."""
    collector = _ATTACHED.get(registry)
    if collector is None:
        _ATTACHED[registry] = collector = AuthCollector(services)
        registry.register(collector)
    collector.services = services


class AuthCollector(Collector):
    def __init__(self, services: Any) -> None:
        self.services = services

    def collect(self) -> Iterator[Any]:
        r, a = self.services.resolver, self.services.admin_auth
        yield CounterMetricFamily(PREFIX + "key_lookup_store_failures", "Access-key lookups the store failed",
                                  value=r.store_failures)
        yield CounterMetricFamily(PREFIX + "key_lookups_stale", "Access keys answered from their last good "
                                  "lookup while the store failed", value=r.served_stale)
        yield CounterMetricFamily(PREFIX + "key_lookups_unavailable", "Access keys refused with 503 because "
                                  "the store failed and no recent lookup was known", value=r.refused_unavailable)
        logins = CounterMetricFamily(PREFIX + "admin_logins", "Admin login attempts by outcome", labels=["outcome"])
        for outcome, value in (("ok", a.logins_ok), ("failed", a.logins_failed), ("refused", a.logins_refused)):
            logins.add_metric([outcome], value)
        yield logins
