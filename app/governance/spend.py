"""The spend limits API (``/v1/organizations/spend_limits``), in the wire shapes of Anthropic's
Admin API spend-limits endpoints, which the Claude apps gateway mirrors.

Sources: https://code.claude.com/docs/en/claude-apps-gateway-spend-limits,
https://platform.claude.com/docs/en/api/organization/spend_limits (``SpendLimit``: ``type``,
``id`` ``spl_...``, ``scope``, ``amount`` whole cents as a string or null, ``currency``,
``period``, ``is_enabled``, ``created_at``, ``updated_at``; ``SpendSummary`` for ``/effective``).

Ours in addition: scope ``{"type": "rbac_group_shared", "rbac_group_id"}`` (a shared team budget:
the group's total spend), ``blocked_message`` (added to the 429's message), ``alert_thresholds``
(percent of the cap; default [80, 100]). ``rbac_group_id`` accepts a group id or name; a group
must exist (POST /admin/groups). ``user_id`` is the proxy's user id (``usr_...``).

Every change writes one ``spend_limit_audit`` row (before/after, actor) and one audit-log entry.
Errors: InvalidRequest (400), NotFound (404).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any, cast

from app.admin.service import Actor
from app.errors import InvalidRequest, NotFound
from app.governance.cache import GovernanceCache
from app.governance.periods import PERIODS, Period, iso_z, period_end, period_start
from app.governance.resolve import MICROS_PER_CENT, user_cap
from app.store.audit import AuditRepository
from app.store.groups import GroupRepository
from app.store.spend_limits import SpendLimitRepository
from app.store.usage_reads import BucketQuery, UsageReader
from app.store.users import UserRepository

MAX_AMOUNT_CENTS = 10**13
MAX_BLOCKED_MESSAGE_CHARS = 500
_CENTS = re.compile(r"^(0|[1-9][0-9]{0,13})$")
SCOPE_TYPES = ("user", "rbac_group", "rbac_group_shared", "organization")


@dataclass(frozen=True)
class Page:
    """One page in Admin API list shape: ``{"data", "has_more", "first_id", "last_id"}``; the
    cursors are the first and last item's ``id`` unless given (the effective report pages by user)."""

    data: list[dict[str, Any]]
    has_more: bool
    first_id: str | None = None
    last_id: str | None = None

    def body(self) -> dict[str, Any]:
        return {"data": self.data, "has_more": self.has_more,
                "first_id": self.first_id or (self.data[0].get("id") if self.data else None),
                "last_id": self.last_id or (self.data[-1].get("id") if self.data else None)}


def actor_object(actor: Actor) -> dict[str, Any]:
    """The audit row's ``actor``: ``{"type": "admin_api_key_actor", "admin_api_key_id"}`` for an
    admin API key (username ``admin_api_key:<id>``), else ``{"type": "user_actor", "username"}``."""
    if actor.username.startswith("admin_api_key:"):
        return {"type": "admin_api_key_actor", "admin_api_key_id": actor.username.split(":", 1)[1]}
    return {"type": "user_actor", "username": actor.username}


def public_limit(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A ``spend_limit`` object (Admin API shape + ``blocked_message``, ``alert_thresholds``)."""
    return {"type": "spend_limit", "id": doc["_id"], "scope": dict(doc["scope"]), "amount": doc.get("amount"),
            "currency": "USD", "period": doc["period"], "is_enabled": True,
            "blocked_message": doc.get("blocked_message"), "alert_thresholds": doc.get("alert_thresholds"),
            "created_at": iso_z(doc["created_at"]), "updated_at": iso_z(doc["updated_at"])}


def _public_audit(row: Mapping[str, Any]) -> dict[str, Any]:
    return {"type": "spend_limit_audit_entry", "id": row["_id"], "time": iso_z(row["time"]),
            "action": row["action"], "spend_limit_id": row["spend_limit_id"], "actor": row["actor"],
            "before": public_limit(row["before"]) if row.get("before") else None,
            "after": public_limit(row["after"]) if row.get("after") else None}


def page_limit(limit: int | None, default: int = 20, maximum: int = 1000) -> int:
    if limit is None:
        return default
    if not 1 <= limit <= maximum:
        raise InvalidRequest(f"limit: must be between 1 and {maximum}")
    return limit


def check_cursor(after_id: str | None, before_id: str | None) -> None:
    if after_id and before_id:
        raise InvalidRequest("after_id and before_id: send at most one")


class SpendLimitService:
    """Set, read, delete and report spend limits. ``tz``: the organization's time zone (periods)."""

    def __init__(self, limits: SpendLimitRepository, groups: GroupRepository, users: UserRepository,
                 usage: UsageReader, audit: AuditRepository, cache: GovernanceCache, *, tz: tzinfo = UTC) -> None:
        self.repo, self._groups, self._users, self._usage = limits, groups, users, usage
        self._audit, self.cache, self.tz = audit, cache, tz

    # --- writes -----------------------------------------------------------------------------

    async def set_limit(self, actor: Actor, body: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
        """``POST /v1/organizations/spend_limits`` body -> (the ``spend_limit``, created?).

        Body: ``{"scope": {...}, "amount": "<cents>" | null, "period": "daily"|"weekly"|"monthly",
        "blocked_message"?: str | null, "alert_thresholds"?: [1..1000 percent] | null}``. Creates or
        replaces the cap of that scope and period (keeping its id)."""
        if not isinstance(body, Mapping):
            raise InvalidRequest("body: expected a JSON object")
        scope, scope_key = await self._scope(body.get("scope"))
        period = body.get("period")
        if period not in PERIODS:
            raise InvalidRequest(f"period: must be one of {', '.join(PERIODS)}")
        if "amount" not in body:
            raise InvalidRequest("amount: required (a string of whole USD cents, or null)")
        amount = body["amount"]
        if amount is not None and (not isinstance(amount, str) or not _CENTS.fullmatch(amount)
                                   or int(amount) > MAX_AMOUNT_CENTS):
            raise InvalidRequest('amount: expected a string of whole USD cents ("50000" is $500.00) or null')
        fields: dict[str, Any] = {"amount": amount, "updated_by": actor_object(actor)}
        message = body.get("blocked_message")
        if message is not None and (not isinstance(message, str) or len(message) > MAX_BLOCKED_MESSAGE_CHARS):
            raise InvalidRequest(f"blocked_message: a string of at most {MAX_BLOCKED_MESSAGE_CHARS} characters")
        fields["blocked_message"] = (message.strip() or None) if isinstance(message, str) else None
        thresholds = body.get("alert_thresholds")
        if thresholds is not None:
            if (not isinstance(thresholds, list) or len(thresholds) > 10
                    or any(isinstance(t, bool) or not isinstance(t, int) or not 1 <= t <= 1000 for t in thresholds)):
                raise InvalidRequest("alert_thresholds: a list of at most 10 whole percentages (1-1000) or null")
            thresholds = sorted(set(thresholds))
        fields["alert_thresholds"] = thresholds
        before, after = await self.repo.put(scope, scope_key, period, fields)
        self.cache.limits.put(after)
        action = "updated" if before is not None else "created"
        await self.repo.write_audit(action=action, spend_limit_id=after["_id"], actor=actor_object(actor),
                                    before=before, after=after)
        await self._audit.write(actor=actor.username, ip=actor.ip, action=f"spend_limit.{action}",
                                target_type="spend_limit", target_id=after["_id"],
                                details={"scope": scope, "period": period, "amount": amount,
                                         "before": before.get("amount") if before else None})
        return public_limit(after), before is None

    async def delete_limit(self, actor: Actor, limit_id: str) -> dict[str, Any]:
        """-> ``{"type": "spend_limit_deleted", "id"}``. Raises NotFound."""
        doc = await self.repo.delete(limit_id)
        if doc is None:
            raise NotFound(f"spend limit {limit_id!r} not found")
        self.cache.limits.remove(limit_id)
        await self.repo.write_audit(action="deleted", spend_limit_id=limit_id, actor=actor_object(actor),
                                    before=doc, after=None)
        await self._audit.write(actor=actor.username, ip=actor.ip, action="spend_limit.deleted",
                                target_type="spend_limit", target_id=limit_id,
                                details={"scope": doc["scope"], "period": doc["period"], "amount": doc.get("amount")})
        return {"type": "spend_limit_deleted", "id": limit_id}

    async def _scope(self, scope: Any) -> tuple[dict[str, Any], str]:
        if not isinstance(scope, Mapping) or scope.get("type") not in SCOPE_TYPES:
            raise InvalidRequest(f"scope.type: must be one of {', '.join(SCOPE_TYPES)}")
        kind = scope["type"]
        if kind == "organization":
            return {"type": "organization"}, "organization"
        if kind == "user":
            user_id = scope.get("user_id")
            if not isinstance(user_id, str) or await self._users.get(user_id) is None:
                raise NotFound(f"scope.user_id: user {user_id!r} not found")
            return {"type": "user", "user_id": user_id}, f"user:{user_id}"
        ref = scope.get("rbac_group_id")
        if not isinstance(ref, str) or not ref:
            raise InvalidRequest("scope.rbac_group_id: required (a group id or name)")
        group = await (self._groups.get(ref) if ref.startswith("grp_") else self._groups.get_by_name(ref))
        if group is None:
            raise NotFound(f"scope.rbac_group_id: group {ref!r} not found (create it with POST /admin/groups)")
        return {"type": kind, "rbac_group_id": group["_id"]}, f"{kind}:{group['_id']}"

    # --- reads ------------------------------------------------------------------------------

    async def get_limit(self, limit_id: str) -> dict[str, Any]:
        doc = await self.repo.get(limit_id)
        if doc is None:
            raise NotFound(f"spend limit {limit_id!r} not found")
        return public_limit(doc)

    async def list_limits(self, *, limit: int | None = None, after_id: str | None = None,
                          before_id: str | None = None) -> Page:
        """Caps in creation order, ``limit`` (1-1000, default 20) per page."""
        check_cursor(after_id, before_id)
        docs, has_more = await self.repo.page(limit=page_limit(limit), after_id=after_id, before_id=before_id)
        return Page([public_limit(d) for d in docs], has_more)

    async def audit(self, *, limit: int | None = None, after_id: str | None = None, before_id: str | None = None,
                    spend_limit_id: str | None = None) -> Page:
        """Changes, newest first: ``{"type": "spend_limit_audit_entry", "id", "time", "action",
        "spend_limit_id", "actor", "before", "after"}``."""
        check_cursor(after_id, before_id)
        rows, has_more = await self.repo.audit_page(limit=page_limit(limit), after_id=after_id, before_id=before_id,
                                                    spend_limit_id=spend_limit_id)
        return Page([_public_audit(r) for r in rows], has_more)

    async def effective(self, *, periods: Sequence[str] | None = None, q: str | None = None,
                        sort: str | None = None, user_ids: Sequence[str] | None = None, limit: int | None = None,
                        after_id: str | None = None, now: datetime | None = None) -> Page:
        """One ``spend_summary`` row per (user, period) the user resolves a cap for, with the
        period-to-date spend (recorded usage: the hour buckets from the period's start, so a
        request not yet written, about a second, is missing):

        ``{"type": "spend_summary", "actor": {"type": "user_actor", "user_id", "name",
        "email_address", "deleted": false}, "scope": {"type": "user", "user_id"}, "period",
        "amount", "currency": "USD", "period_to_date_spend": "<cents>", "source": {scope},
        "spend_limit_id", "period_start", "resets_at", "percent_used", "blocked"}``

        Pages by user (``limit`` users, default 20; a user's rows never split); ``sort``:
        ``user`` (default, by user id) or ``spend_desc`` (highest share of a cap first);
        ``q``: a substring of the user's id, name or e-mail."""
        if any(p not in PERIODS for p in (periods or PERIODS)):
            raise InvalidRequest(f"period: must be among {', '.join(PERIODS)}")
        wanted = cast("list[Period]", list(periods or PERIODS))  # each checked against PERIODS above
        if sort not in (None, "user", "spend_desc"):
            raise InvalidRequest("sort: user | spend_desc")
        now = now or datetime.now(UTC)
        users = await self._users_with_groups(q, user_ids)
        starts = {p: period_start(now, p, self.tz) for p in wanted}
        spend = {p: await self.spend_by_user(starts[p], now) for p in wanted}
        table = self.cache.limits
        by_user: list[tuple[str, list[dict[str, Any]], float]] = []
        for user in users:
            rows, top = [], 0.0
            for p in wanted:
                cap = user_cap(table, user["_id"], user.get("groups") or [], p)  # type: ignore[arg-type]
                if cap is None:
                    continue
                used = spend[p].get(user["_id"], 0)
                cents = -(-used // MICROS_PER_CENT)  # rounded up: never shows less than was spent
                share = used / cap.limit_usd_micros if cap.limit_usd_micros else (1.0 if used else 0.0)
                top = max(top, share)
                rows.append({"type": "spend_summary",
                             "actor": {"type": "user_actor", "user_id": user["_id"], "name": user.get("name"),
                                       "email_address": user.get("email"), "deleted": False},
                             "scope": {"type": "user", "user_id": user["_id"]}, "period": p,
                             "amount": str(cap.amount_cents), "currency": "USD",
                             "period_to_date_spend": str(cents), "source": cap.source,
                             "spend_limit_id": cap.spend_limit_id, "period_start": iso_z(starts[p]),
                             "resets_at": iso_z(period_end(starts[p], p, self.tz)),  # type: ignore[arg-type]
                             "percent_used": round(share * 100, 2), "blocked": used >= cap.limit_usd_micros})
            if rows:
                by_user.append((user["_id"], rows, top))
        if sort == "spend_desc":
            by_user.sort(key=lambda r: (-r[2], r[0]))
        else:
            by_user.sort(key=lambda r: r[0])
        ids = [u for u, _, _ in by_user]
        if after_id is not None:
            by_user = by_user[ids.index(after_id) + 1:] if after_id in ids else []
        size = page_limit(limit)
        chosen = by_user[:size]
        data = [row for _, rows, _ in chosen for row in rows]
        return Page(data, len(by_user) > size, first_id=chosen[0][0] if chosen else None,
                    last_id=chosen[-1][0] if chosen else None)

    async def _users_with_groups(self, q: str | None, user_ids: Sequence[str] | None) -> list[dict[str, Any]]:
        users = await self._users.list(search=None, limit=100_000)
        if user_ids:
            wanted = set(user_ids)
            users = [u for u in users if u["_id"] in wanted]
        if q:
            needle = q.lower()
            users = [u for u in users if any(needle in str(u.get(f) or "").lower() for f in ("_id", "name", "email"))]
        return users

    async def spend_by_user(self, start: datetime, end: datetime) -> dict[str, int]:
        """``{user id: micro-USD}`` recorded from ``start`` to ``end`` (hour buckets; one aggregate)."""
        rows = await self._usage.totals_by_scope_id("user", "hour", start, end)
        return {r["_id"]: int(r.get("cost_usd_micros") or 0) for r in rows}

    async def spend_of(self, counter: tuple[str, str], start: datetime, end: datetime) -> int:
        """Micro-USD recorded for one user, or one group's members, from ``start`` to ``end``."""
        kind, ident = counter
        if kind == "user":
            docs = await self._usage.find_buckets(BucketQuery("user", ident, "hour", start, end))
            return sum(int(d.get("cost_usd_micros") or 0) for d in docs)
        members = set(await self._groups.member_ids(ident))
        return sum(v for u, v in (await self.spend_by_user(start, end)).items() if u in members)
