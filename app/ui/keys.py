"""Access key actions from a user's page: create, rotate, revoke, fallback policy, limits, Bedrock
API key. Each calls one AdminService method (audited there) and answers with the user's keys
section (``users/_keys.html``) for htmx, or, for plain forms, a 303 back to the user's page.

A new or rotated key is answered with a page, never a redirect: its plaintext exists only in that
one response. Revoke, rotate and removing a Bedrock key need ``confirm=yes`` (htmx sends it after
``hx-confirm``); without it a plain form gets a confirmation page first.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from starlette.responses import RedirectResponse, Response

from app.admin.service import IssuedKey
from app.deps import ServicesDep
from app.services import Services
from app.store.access_keys import AccessKeyDoc
from app.ui.errors import UiRoute
from app.ui.forms import limits_patch
from app.ui.render import is_htmx, render
from app.ui.session import AdminPost
from app.ui.users import NOTICES, actor, detail_context, keys_context

router = APIRouter(route_class=UiRoute)

ConfirmField = Annotated[str, Form()]


async def _answer(request: Request, services: Services, doc: AccessKeyDoc, notice: str, *,
                  new_key: IssuedKey | None = None) -> Response:
    user = await services.admin.get_user(doc["user_id"])
    if not is_htmx(request):
        if new_key is None:
            return RedirectResponse(f"/ui/users/{user['_id']}?notice={notice}#keys", status_code=303)
        return render(request, "users/detail.html",
                      await detail_context(request, services, user, new_key=new_key, notice=NOTICES.get(notice)))
    keys = await services.access_keys.list_for_user(user["_id"])
    return render(request, "users/_keys.html",
                  keys_context(request, services, user, keys, new_key=new_key, notice=NOTICES.get(notice)),
                  force_partial=True)


def _confirm(request: Request, doc: AccessKeyDoc, action: str, question: str) -> Response:
    return render(request, "confirm.html", {"question": question, "action": action, "key": doc,
                                            "back": f"/ui/users/{doc['user_id']}#keys"})


@router.post("/users/{user_id}/keys")
async def create_key(request: Request, user_id: str, services: ServicesDep, session: AdminPost,
                     name: Annotated[str, Form()] = "", fallback_policy: Annotated[str, Form()] = "") -> Response:
    issued = await services.admin.create_key(actor(request, session), user_id, name=name.strip() or None,
                                             fallback_policy=fallback_policy or None)
    return await _answer(request, services, issued.doc, "key-created", new_key=issued)


@router.post("/keys/{key_id}/rotate")
async def rotate_key(request: Request, key_id: str, services: ServicesDep, session: AdminPost,
                     confirm: ConfirmField = "") -> Response:
    if confirm != "yes":
        doc = await services.admin.get_key(key_id)
        return _confirm(request, doc, f"/ui/keys/{key_id}/rotate",
                        f"Rotate access key {doc['prefix']}…? It stops working and a new key is issued.")
    issued = await services.admin.rotate_key(actor(request, session), key_id)
    return await _answer(request, services, issued.doc, "key-rotated", new_key=issued)


@router.post("/keys/{key_id}/revoke")
async def revoke_key(request: Request, key_id: str, services: ServicesDep, session: AdminPost,
                     confirm: ConfirmField = "") -> Response:
    if confirm != "yes":
        doc = await services.admin.get_key(key_id)
        return _confirm(request, doc, f"/ui/keys/{key_id}/revoke",
                        f"Revoke access key {doc['prefix']}…? Clients using it are refused at once.")
    doc = await services.admin.revoke_key(actor(request, session), key_id)
    return await _answer(request, services, doc, "key-revoked")


@router.post("/keys/{key_id}/policy")
async def set_policy(request: Request, key_id: str, services: ServicesDep, session: AdminPost,
                     fallback_policy: Annotated[str, Form()] = "") -> Response:
    doc = await services.admin.set_key_policy(actor(request, session), key_id, fallback_policy or None)
    return await _answer(request, services, doc, "policy-set")


@router.post("/keys/{key_id}/limits")
async def set_key_limits(request: Request, key_id: str, services: ServicesDep, session: AdminPost) -> Response:
    doc = await services.admin.set_limits(actor(request, session), "access_key", key_id,
                                          limits_patch(await request.form()))
    return await _answer(request, services, doc, "limits-set")


@router.post("/keys/{key_id}/bedrock")
async def set_bedrock_key(request: Request, key_id: str, services: ServicesDep, session: AdminPost,
                          api_key: Annotated[str, Form()] = "") -> Response:
    doc = await services.admin.set_bedrock_key(actor(request, session), key_id, api_key)
    return await _answer(request, services, doc, "bedrock-set")


@router.post("/keys/{key_id}/bedrock/remove")
async def remove_bedrock_key(request: Request, key_id: str, services: ServicesDep, session: AdminPost,
                             confirm: ConfirmField = "") -> Response:
    if confirm != "yes":
        doc = await services.admin.get_key(key_id)
        return _confirm(request, doc, f"/ui/keys/{key_id}/bedrock/remove",
                        f"Remove the Bedrock API key of access key {doc['prefix']}…?")
    doc = await services.admin.clear_bedrock_key(actor(request, session), key_id)
    return await _answer(request, services, doc, "bedrock-removed")
