"""Which spend caps apply to a user (pure; no I/O).

Per period (daily, weekly, monthly), independently:

1. the user's own cap (scope ``user``), else
2. the most restrictive (lowest) cap among the user's groups (scope ``rbac_group``: each member
   may spend that much), else
3. the organization default (scope ``organization``: each user may spend that much), else
4. no cap.

A cap whose ``amount`` is null sets no number at its scope and resolution falls through to the
next level (the Admin API's meaning of null). A user is blocked when over any period's resolved
cap. Besides, every ``rbac_group_shared`` cap of each of the user's groups applies: the *group's
total* spend in the period (the shared team budget), checked in addition to the per-user cap.

Source: https://code.claude.com/docs/en/claude-apps-gateway-spend-limits (resolution order);
the shared budget is ours.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from app.governance.periods import PERIODS, Period

MICROS_PER_CENT = 10_000
DEFAULT_ALERT_THRESHOLDS = (80, 100)


@dataclass(frozen=True, slots=True)
class Cap:
    """One applicable cap. ``counter``: whose spend it counts (``("user", user id)`` or
    ``("group", group id)`` for a shared budget); ``amount_cents``: whole USD cents;
    ``source``: the scope object it came from (Admin API shape)."""

    spend_limit_id: str
    period: Period
    amount_cents: int
    counter: tuple[str, str]
    source: dict[str, Any]
    blocked_message: str | None = None
    alert_thresholds: tuple[int, ...] = DEFAULT_ALERT_THRESHOLDS

    @property
    def limit_usd_micros(self) -> int:
        return self.amount_cents * MICROS_PER_CENT


class LimitTable:
    """The caps in force, indexed by ``(scope_key, period)``; built from ``spend_limits`` documents."""

    def __init__(self, docs: Iterable[Mapping[str, Any]] = ()) -> None:
        self.docs: dict[str, Mapping[str, Any]] = {}
        self._by_key: dict[tuple[str, str], Mapping[str, Any]] = {}
        for doc in docs:
            self.put(doc)

    def put(self, doc: Mapping[str, Any]) -> None:
        old = self.docs.get(doc["_id"])
        if old is not None:
            self._by_key.pop((old["scope_key"], old["period"]), None)
        self.docs[doc["_id"]] = doc
        self._by_key[(doc["scope_key"], doc["period"])] = doc

    def remove(self, limit_id: str) -> None:
        old = self.docs.pop(limit_id, None)
        if old is not None and self._by_key.get((old["scope_key"], old["period"])) is old:
            del self._by_key[(old["scope_key"], old["period"])]

    def get(self, scope_key: str, period: str) -> Mapping[str, Any] | None:
        return self._by_key.get((scope_key, period))

    def __bool__(self) -> bool:
        return bool(self.docs)


def amount_cents(doc: Mapping[str, Any] | None) -> int | None:
    value = doc.get("amount") if doc else None
    return int(value) if isinstance(value, str) and value.isdigit() else None


def _cap(doc: Mapping[str, Any], period: Period, counter: tuple[str, str]) -> Cap:
    thresholds = doc.get("alert_thresholds")
    return Cap(doc["_id"], period, amount_cents(doc) or 0, counter, dict(doc["scope"]), doc.get("blocked_message"),
               tuple(thresholds) if thresholds is not None else DEFAULT_ALERT_THRESHOLDS)


def user_cap(table: LimitTable, user_id: str, group_ids: Sequence[str], period: Period) -> Cap | None:
    """The resolved per-user cap for one period (see the module docstring), or None."""
    counter = ("user", user_id)
    doc = table.get(f"user:{user_id}", period)
    if amount_cents(doc) is not None:
        return _cap(doc, period, counter)  # type: ignore[arg-type]
    group_docs = [d for g in group_ids if amount_cents(d := table.get(f"rbac_group:{g}", period)) is not None]
    if group_docs:
        return _cap(min(group_docs, key=lambda d: (amount_cents(d), d["_id"])), period, counter)  # type: ignore[arg-type]
    doc = table.get("organization", period)
    if amount_cents(doc) is not None:
        return _cap(doc, period, counter)  # type: ignore[arg-type]
    return None


def caps_for(table: LimitTable, user_id: str, group_ids: Sequence[str],
             periods: Sequence[Period] = PERIODS) -> list[Cap]:
    """Every cap a request of ``user_id`` must fit: the resolved per-user cap of each period, then
    the shared budgets of the user's groups."""
    if not table:
        return []
    out = [cap for p in periods if (cap := user_cap(table, user_id, group_ids, p)) is not None]
    for group_id in dict.fromkeys(group_ids):
        for period in periods:
            doc = table.get(f"rbac_group_shared:{group_id}", period)
            if amount_cents(doc) is not None:
                out.append(_cap(doc, period, ("group", group_id)))  # type: ignore[arg-type]
    return out
