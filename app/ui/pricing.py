"""``/ui/pricing`` (prices in force with their source; set and remove admin overrides) and
``/ui/model-map`` (where each Anthropic model goes on Bedrock; set and remove overrides).
Plain forms with a 303 back to the page (``?notice=``); they work without JavaScript. The services
are app/admin/pricing.py and app/admin/model_map.py, as for ``/admin/pricing`` and ``/admin/model-map``.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from starlette.responses import RedirectResponse, Response

from app.admin.service import Actor
from app.deps import ServicesDep
from app.errors import InvalidRequest
from app.ui.errors import UiRoute
from app.ui.render import render
from app.ui.session import AdminPost, AdminSession, UiSession
from app.usage.pricing import RATE_FIELDS

router = APIRouter(route_class=UiRoute)

NOTICES = {"price-set": "Price saved: new requests are billed at it (this replica now, others within 30 s).",
           "price-removed": "Price override removed.", "map-set": "Model mapping saved (all replicas within 30 s).",
           "map-removed": "Model mapping override removed."}
Text = Annotated[str, Form()]


def actor(request: Request, session: UiSession) -> Actor:
    return Actor(username=session.username or "?", ip=request.client.host if request.client else None)


@router.get("/pricing")
async def pricing_page(request: Request, services: ServicesDep, _: AdminSession) -> Response:
    described = await services.pricing_admin.describe()
    return render(request, "pricing/index.html", {
        **described, "rate_fields": RATE_FIELDS, "edit": request.query_params.get("model", ""),
        "notice": NOTICES.get(request.query_params.get("notice", ""))})


@router.post("/pricing")
async def set_price(request: Request, services: ServicesDep, session: AdminPost, model: Text = "",
                    provider: Text = "", input: Text = "", output: Text = "", cache_write_5m: Text = "",
                    cache_write_1h: Text = "", cache_read: Text = "") -> Response:
    """Empty rate fields are left out (the price the override replaces gives them)."""
    values = {"input": input, "output": output, "cache_write_5m": cache_write_5m, "cache_write_1h": cache_write_1h,
              "cache_read": cache_read}
    rates = {name: value.strip() for name, value in values.items() if value.strip()}
    if provider not in ("", "anthropic", "bedrock"):
        raise InvalidRequest("provider: must be any, anthropic or bedrock")
    key = f"{provider}:{model.strip()}" if provider else model.strip()
    saved = await services.pricing_admin.put(actor(request, session), key, rates)
    return RedirectResponse(f"/ui/pricing?notice=price-set#price-{quote(saved['model'], safe='')}", status_code=303)


@router.post("/pricing/remove")
async def remove_price(request: Request, services: ServicesDep, session: AdminPost, model: Text = "") -> Response:
    await services.pricing_admin.delete(actor(request, session), model)
    return RedirectResponse("/ui/pricing?notice=price-removed", status_code=303)


@router.get("/model-map")
async def model_map_page(request: Request, services: ServicesDep, _: AdminSession) -> Response:
    model_map = services.model_map
    assert model_map is not None  # app.main always sets it; only hand-built test Services omit it
    described = await model_map.describe()
    return render(request, "model_map/index.html", {
        **described, "notice": NOTICES.get(request.query_params.get("notice", ""))})


@router.post("/model-map")
async def set_model_map(request: Request, services: ServicesDep, session: AdminPost, anthropic_model: Text = "",
                        bedrock_model_id: Text = "") -> Response:
    model_map = services.model_map
    assert model_map is not None  # app.main always sets it; only hand-built test Services omit it
    await model_map.put(actor(request, session), anthropic_model.strip(), bedrock_model_id.strip())
    return RedirectResponse("/ui/model-map?notice=map-set", status_code=303)


@router.post("/model-map/remove")
async def remove_model_map(request: Request, services: ServicesDep, session: AdminPost,
                           anthropic_model: Text = "") -> Response:
    model_map = services.model_map
    assert model_map is not None  # app.main always sets it; only hand-built test Services omit it
    await model_map.delete(actor(request, session), anthropic_model.strip())
    return RedirectResponse("/ui/model-map?notice=map-removed", status_code=303)
