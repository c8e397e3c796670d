"""``/ui/groups`` (groups, members, model allow-lists), ``/ui/spend-limits`` (caps in force and
period-to-date spend as bars) and ``/ui/alerts`` (each cap's alert thresholds; alerts fired).

No second implementation: every read and write calls the service the JSON API calls
(``services.governance.groups`` / ``.spend``: app/governance/groups.py, spend.py), so validation,
audit entries and cache updates are theirs. Recent alerts are the audit log's ``spend_limit.alert``
entries, which app/governance/alerts.py writes. Plain forms get a 303 back to the page
(``?notice=``); htmx requests get fragments (``governance/_group_rows.html``,
``governance/_members.html``, ``governance/_effective.html``).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from starlette.responses import RedirectResponse, Response

from app.admin.service import Actor
from app.deps import ServicesDep
from app.errors import InvalidRequest
from app.governance.periods import PERIODS
from app.governance.resolve import DEFAULT_ALERT_THRESHOLDS
from app.services import Services
from app.ui.errors import UiRoute
from app.ui.render import is_htmx, render
from app.ui.session import AdminPost, AdminSession, UiSession

router = APIRouter(route_class=UiRoute)
Text = Annotated[str, Form()]

NEAR_PERCENT = 80  # rows at or above this share of their cap are highlighted as near
EFFECTIVE_ROWS = 200  # users shown in the spend report (highest share first)
RECENT_ALERTS = 100
SCOPE_LABELS = {"organization": "Organization default", "rbac_group": "Group (per member)",
                "rbac_group_shared": "Group (shared team budget)", "user": "User"}
NOTICES = {
    "group-created": "Group created.", "group-saved": "Group saved.", "group-deleted":
    "Group deleted: removed from its members; its spend limits were deleted.",
    "models-saved": "Model allow-list saved.", "member-added": "Member added.", "member-removed": "Member removed.",
    "limit-saved": "Spend limit saved (new requests are checked against it).", "limit-deleted": "Spend limit deleted.",
    "thresholds-saved": "Alert thresholds saved.",
}


def actor(request: Request, session: UiSession) -> Actor:
    return Actor(username=session.username or "?", ip=request.client.host if request.client else None)


def notice(request: Request) -> str | None:
    return NOTICES.get(request.query_params.get("notice", ""))


def model_list(text: str) -> list[str] | None:
    """One model per line (or comma-separated); empty text -> None (no restriction)."""
    models = [m.strip() for m in text.replace(",", "\n").splitlines() if m.strip()]
    return models or None


def cents(amount_usd: str) -> str | None:
    """``"12.50"`` (USD) -> ``"1250"`` (whole cents, the API's amount); empty -> None (no cap).
    Raises InvalidRequest for anything else."""
    text = amount_usd.strip().lstrip("$").replace(",", "")
    if not text:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise InvalidRequest("amount: a USD amount such as 500 or 12.50 (empty: no cap)") from None
    if not value.is_finite() or value < 0 or value != value.quantize(Decimal("0.01")):
        raise InvalidRequest("amount: a non-negative USD amount with at most two decimals")
    return str(int(value * 100))


def thresholds(text: str) -> list[int] | None:
    """``"50, 80, 100"`` -> ``[50, 80, 100]``; empty -> None (the default, 80 and 100)."""
    parts = [p.strip().rstrip("%") for p in text.replace(";", ",").replace(" ", ",").split(",") if p.strip()]
    if not parts:
        return None
    if not all(p.isdigit() for p in parts):
        raise InvalidRequest("alert thresholds: whole percentages separated by commas, e.g. 50, 80, 100")
    return [int(p) for p in parts]


async def all_limits(services: Services) -> list[dict[str, Any]]:
    """Every spend limit (``SpendLimitService.list_limits``, paged through), with ``cap_usd``
    (the amount in USD; None for no cap)."""
    out: list[dict[str, Any]] = []
    after: str | None = None
    while True:
        page = await services.governance.spend.list_limits(limit=1000, after_id=after)
        out += [{**lim, "cap_usd": None if lim["amount"] is None else int(lim["amount"]) / 100} for lim in page.data]
        if not page.has_more or not page.data:
            return out
        after = page.data[-1]["id"]


async def names(services: Services) -> dict[str, str]:
    """``{group id or user id: name}`` for showing scopes."""
    groups = await services.governance.groups.list_groups()
    users = await services.users.list(limit=100_000)
    return {**{u["_id"]: u.get("name") or u["_id"] for u in users}, **{g["id"]: g["name"] for g in groups}}


def scope_target(scope: dict[str, Any]) -> str | None:
    return scope.get("user_id") or scope.get("rbac_group_id")


# --- groups ---------------------------------------------------------------------------------

@router.get("/groups")
async def groups_page(request: Request, services: ServicesDep, _: AdminSession) -> Response:
    groups = await services.governance.groups.list_groups()
    return render(request, "governance/groups.html", {"groups": groups, "notice": notice(request)},
                  partial="governance/_group_rows.html")


@router.post("/groups")
async def create_group(request: Request, services: ServicesDep, session: AdminPost, name: Text = "",
                       description: Text = "", allowed_models: Text = "") -> Response:
    doc = await services.governance.groups.create_group(actor(request, session), name, description=description,
                                                        allowed_models=model_list(allowed_models))
    if is_htmx(request):
        groups = await services.governance.groups.list_groups()
        return render(request, "governance/_group_rows.html", {"groups": groups, "created_id": doc["_id"],
                                                                "notice": NOTICES["group-created"]},
                      force_partial=True)
    return RedirectResponse(f"/ui/groups/{doc['_id']}?notice=group-created", status_code=303)


async def group_context(services: Services, group_id: str) -> dict[str, Any]:
    group = await services.governance.groups.resolve(group_id)
    members = await services.governance.groups.members(group["_id"])
    member_ids = {m["id"] for m in members}
    users = [u for u in await services.users.list(limit=100_000) if u["_id"] not in member_ids]
    return {"group": group, "members": members, "candidates": users}


@router.get("/groups/{group_id}")
async def group_page(request: Request, group_id: str, services: ServicesDep, _: AdminSession) -> Response:
    context = await group_context(services, group_id)
    return render(request, "governance/group.html", {**context, "notice": notice(request)},
                  partial="governance/_members.html")


@router.post("/groups/{group_id}")
async def update_group(request: Request, group_id: str, services: ServicesDep, session: AdminPost,
                       name: Text = "", description: Text = "") -> Response:
    """Rename and describe (the form sends both)."""
    await services.governance.groups.update_group(actor(request, session), group_id, name=name,
                                                  description=description)
    return RedirectResponse(f"/ui/groups/{group_id}?notice=group-saved", status_code=303)


@router.post("/groups/{group_id}/models")
async def set_group_models(request: Request, group_id: str, services: ServicesDep, session: AdminPost,
                           allowed_models: Text = "") -> Response:
    """The group's allow-list, one model per line; empty: no restriction."""
    await services.governance.groups.update_group(actor(request, session), group_id,
                                                  allowed_models=model_list(allowed_models))
    return RedirectResponse(f"/ui/groups/{group_id}?notice=models-saved#models", status_code=303)


async def _members_answer(request: Request, services: Services, group_id: str, code: str) -> Response:
    if is_htmx(request):
        context = await group_context(services, group_id)
        return render(request, "governance/_members.html", {**context, "notice": NOTICES[code]}, force_partial=True)
    return RedirectResponse(f"/ui/groups/{group_id}?notice={code}#members", status_code=303)


@router.post("/groups/{group_id}/members")
async def add_member(request: Request, group_id: str, services: ServicesDep, session: AdminPost,
                     user_id: Text = "") -> Response:
    if not user_id.strip():
        raise InvalidRequest("user: choose a user to add")
    await services.governance.groups.add_member(actor(request, session), group_id, user_id.strip())
    return await _members_answer(request, services, group_id, "member-added")


@router.post("/groups/{group_id}/members/remove")
async def remove_member(request: Request, group_id: str, services: ServicesDep, session: AdminPost,
                        user_id: Text = "") -> Response:
    await services.governance.groups.remove_member(actor(request, session), group_id, user_id.strip())
    return await _members_answer(request, services, group_id, "member-removed")


@router.post("/groups/{group_id}/delete")
async def delete_group(request: Request, group_id: str, services: ServicesDep, session: AdminPost,
                       confirm: Text = "") -> Response:
    if confirm != "yes":
        raise InvalidRequest("confirm: tick the box to delete this group")
    await services.governance.groups.delete_group(actor(request, session), group_id)
    return RedirectResponse("/ui/groups?notice=group-deleted", status_code=303)


# --- spend limits ---------------------------------------------------------------------------

def bar_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``effective`` rows with ``state``: ``over`` (blocked), ``near`` (≥ NEAR_PERCENT) or ``ok``,
    ``bar`` (0-100, the bar's width), ``spend_usd`` and ``cap_usd``."""
    out = []
    for row in rows:
        pct = float(row["percent_used"])
        state = "over" if row["blocked"] else "near" if pct >= NEAR_PERCENT else "ok"
        out.append({**row, "state": state, "bar": min(pct, 100.0), "spend_usd": int(row["period_to_date_spend"]) / 100,
                    "cap_usd": int(row["amount"]) / 100})
    return out


async def effective_context(request: Request, services: Services) -> dict[str, Any]:
    q = (request.query_params.get("q") or "").strip()
    page = await services.governance.spend.effective(q=q or None, sort="spend_desc", limit=EFFECTIVE_ROWS)
    rows = bar_rows(page.data)
    return {"rows": rows, "q": q, "has_more": page.has_more, "near_percent": NEAR_PERCENT,
            "near_count": len({r["actor"]["user_id"] for r in rows if r["state"] != "ok"})}


@router.get("/spend-limits")
async def spend_limits_page(request: Request, services: ServicesDep, _: AdminSession) -> Response:
    if is_htmx(request):  # the report's search form
        return render(request, "governance/_effective.html", await effective_context(request, services),
                      force_partial=True)
    limits = await all_limits(services)
    groups = await services.governance.groups.list_groups()
    users = await services.users.list(limit=100_000)
    label = {**{u["_id"]: u.get("name") or u["_id"] for u in users}, **{g["id"]: g["name"] for g in groups}}
    order = {kind: i for i, kind in enumerate(SCOPE_LABELS)}
    limits.sort(key=lambda lim: (order.get(lim["scope"]["type"], 9), label.get(scope_target(lim["scope"]) or "", ""),
                                 PERIODS.index(lim["period"])))
    return render(request, "governance/spend_limits.html", {
        "limits": limits, "groups": groups, "users": users, "label": label, "periods": PERIODS,
        "scope_labels": SCOPE_LABELS, "notice": notice(request), **await effective_context(request, services)})


@router.post("/spend-limits")
async def set_spend_limit(request: Request, services: ServicesDep, session: AdminPost, scope_type: Text = "",
                          user_id: Text = "", group_id: Text = "", period: Text = "", amount_usd: Text = "",
                          blocked_message: Text = "", alert_thresholds: Text = "") -> Response:
    """Create or replace the cap of one scope and period (``SpendLimitService.set_limit``)."""
    scope: dict[str, Any] = {"type": scope_type}
    if scope_type == "user":
        scope["user_id"] = user_id.strip()
    elif scope_type in ("rbac_group", "rbac_group_shared"):
        scope["rbac_group_id"] = group_id.strip()
    body = {"scope": scope, "period": period, "amount": cents(amount_usd),
            "blocked_message": blocked_message.strip() or None, "alert_thresholds": thresholds(alert_thresholds)}
    limit, _ = await services.governance.spend.set_limit(actor(request, session), body)
    return RedirectResponse(f"/ui/spend-limits?notice=limit-saved#limit-{limit['id']}", status_code=303)


@router.post("/spend-limits/delete")
async def delete_spend_limit(request: Request, services: ServicesDep, session: AdminPost,
                             spend_limit_id: Text = "") -> Response:
    await services.governance.spend.delete_limit(actor(request, session), spend_limit_id.strip())
    return RedirectResponse("/ui/spend-limits?notice=limit-deleted", status_code=303)


# --- alerts ---------------------------------------------------------------------------------

@router.get("/alerts")
async def alerts_page(request: Request, services: ServicesDep, _: AdminSession) -> Response:
    limits = await all_limits(services)
    fired = await services.audit.list(action="spend_limit.alert", limit=RECENT_ALERTS)
    return render(request, "governance/alerts.html", {
        "limits": limits, "label": await names(services), "scope_labels": SCOPE_LABELS, "fired": fired,
        "default_thresholds": DEFAULT_ALERT_THRESHOLDS, "webhook": services.settings.alert_webhook_url is not None,
        "notice": notice(request)})


@router.post("/alerts")
async def set_thresholds(request: Request, services: ServicesDep, session: AdminPost, spend_limit_id: Text = "",
                         alert_thresholds: Text = "") -> Response:
    """Replace one cap's thresholds: the cap is re-set with its own scope, period, amount and
    blocked message (``set_limit`` replaces the whole cap; it keeps the id)."""
    current = await services.governance.spend.get_limit(spend_limit_id.strip())
    body = {key: current[key] for key in ("scope", "period", "amount", "blocked_message")}
    await services.governance.spend.set_limit(actor(request, session),
                                              {**body, "alert_thresholds": thresholds(alert_thresholds)})
    return RedirectResponse(f"/ui/alerts?notice=thresholds-saved#alert-{current['id']}", status_code=303)
