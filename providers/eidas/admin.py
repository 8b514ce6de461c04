"""The eIDAS links as a JSON API under ``/admin/eidas``, for admin clients (``admin:eidas``).

``PUT /admin/eidas/links`` links a person identifier to a codice fiscale,
``DELETE /admin/eidas/links`` unlinks it, ``GET /admin/eidas/links?fiscal_code=`` lists
links. A change names the operator (the authenticated admin client plus the person at
the desk, ``operator``) and a ``reason``; both go to the audit trail with the change.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from broker.admin.auth import AdminCaller
from broker.errors import BadRequest, Text
from broker.http.threads import in_thread
from providers.base import ProviderServices
from providers.eidas.links import Link, LinkStore

SCOPE = "admin:eidas"
NO_STORE = {"Cache-Control": "no-store"}


async def _body(request: Request, *required: str) -> dict[str, str]:
    try:
        data = json.loads(await request.body() or b"{}")
    except ValueError as exc:
        raise BadRequest("admin eidas: body is not JSON") from exc
    if not isinstance(data, dict):
        raise BadRequest("admin eidas: body must be a JSON object")
    out: dict[str, str] = {}
    for key in required:
        value = data.get(key)
        if not isinstance(value, str) or not value.strip() or len(value) > 500:
            raise BadRequest(f"admin eidas: '{key}' is required (text, at most 500 characters)",
                             message=Text(f"Il campo '{key}' è obbligatorio.",
                                          f"The field '{key}' is required."))
        out[key] = value.strip()
    return out


def _json(link: Link) -> dict[str, Any]:
    return {"person_identifier": link.person_identifier, "fiscal_code": link.fiscal_code,
            "linked_at": link.linked_at, "operator": link.operator, "reason": link.reason}


def admin_router(links: LinkStore, services: ProviderServices) -> APIRouter:
    router = APIRouter(prefix="/admin/eidas")
    admin = Depends(services.admin.require(SCOPE))

    @router.put("/links")
    async def link(request: Request, caller: AdminCaller = admin) -> JSONResponse:
        body = await _body(request, "person_identifier", "fiscal_code", "operator", "reason")
        made = await in_thread(links.link, body["person_identifier"], body["fiscal_code"],
                               operator=f"{caller.client_id}:{body['operator']}",
                               reason=body["reason"], now=services.clock.now())
        return JSONResponse(_json(made), headers=NO_STORE)

    @router.delete("/links")
    async def unlink(request: Request, caller: AdminCaller = admin) -> JSONResponse:
        body = await _body(request, "person_identifier", "operator", "reason")
        was = await in_thread(links.unlink, body["person_identifier"],
                              operator=f"{caller.client_id}:{body['operator']}",
                              reason=body["reason"])
        return JSONResponse({"unlinked": body["person_identifier"], "fiscal_code": was},
                            headers=NO_STORE)

    @router.get("/links")
    async def listing(fiscal_code: str | None = None,
                      caller: AdminCaller = admin) -> JSONResponse:
        found = await in_thread(links.links, fiscal_code)
        return JSONResponse({"links": [_json(x) for x in found]}, headers=NO_STORE)

    return router
