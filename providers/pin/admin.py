"""The PIN back office as a JSON API under ``/admin/pin``, for admin clients only.

Every route depends on ``AdminAuth.require``: ``admin:pin`` for the back office,
``contact-center`` for telephone-PIN checks. Every change names the operator: the
authenticated admin client id plus the ``operator`` field of the body (the person at
the desk), and a ``reason``; both go to the audit trail and the practice history.
Uploaded documents are readable only here, by conversion id.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from broker.admin.auth import AdminCaller
from broker.errors import BadRequest, BrokerError, InvalidFiscalCode, NotFound, Text
from broker.fiscal_code import normalize_person
from broker.http.threads import in_thread
from broker.outbox import Status
from providers.pin import records
from providers.pin.lifecycle import LifecycleError
from providers.pin.uploads import read_file

if TYPE_CHECKING:
    from providers.pin.provider import PinProvider

NO_STORE = {"Cache-Control": "no-store"}
CONFLICTS = {
    "unknown": (404, "no such conversion"),
    "decided": (409, "the conversion was already decided"),
    "no_pin": (409, "the person has no active PIN"),
    "no_initial_pin": (409, "no initial PIN whose letter could be reissued"),
    "no_record": (409, "no PIN request on record"),
}


class Conflict(BadRequest):
    status = 409
    code = "conflict"
    message = Text("L'operazione non è possibile nello stato attuale.",
                   "The operation is not possible in the current state.")


async def _body(request: Request, *required: str) -> dict[str, str]:
    try:
        data = json.loads(await request.body() or b"{}")
    except ValueError as exc:
        raise BadRequest("admin pin: body is not JSON") from exc
    if not isinstance(data, dict):
        raise BadRequest("admin pin: body must be a JSON object")
    out = {}
    for key in required:
        value = data.get(key)
        if not isinstance(value, str) or not value.strip() or len(value) > 500:
            raise BadRequest(f"admin pin: '{key}' is required (text, at most 500 characters)",
                             message=Text(f"Il campo '{key}' è obbligatorio.",
                                          f"The field '{key}' is required."))
        out[key] = value.strip()
    return out


def _cf(value: str) -> str:
    try:
        return normalize_person(value)
    except InvalidFiscalCode as exc:
        raise BadRequest(f"admin pin: {exc.detail}", message=exc.message) from exc


def _conflict(exc: LifecycleError) -> BrokerError:
    status, text = CONFLICTS.get(exc.code, (409, exc.code))
    if status == 404:
        return NotFound(text)
    return Conflict(text, message=Text(text, text))


def _operator(caller: AdminCaller, body: dict[str, str]) -> str:
    return f"{caller.client_id}:{body['operator']}"


def admin_router(provider: PinProvider) -> APIRouter:
    router = APIRouter(prefix="/admin/pin")
    life = provider.lifecycle
    assert life is not None
    back_office = Depends(provider.services.admin.require("admin:pin"))
    contact_center = Depends(provider.services.admin.require("contact-center"))

    @router.get("/persons/{fiscal_code}")
    def history(fiscal_code: str, caller: AdminCaller = back_office) -> JSONResponse:
        return JSONResponse(life.history(_cf(fiscal_code)), headers=NO_STORE)

    @router.get("/conversions")
    def conversions(status: str = "pending", caller: AdminCaller = back_office
                    ) -> JSONResponse:
        if status not in ("pending", "approved", "rejected"):
            raise BadRequest("admin pin: unknown conversion status")
        with life.db.transaction() as c:
            found = [v.public() for v in records.conversions(c, status=status)]
        return JSONResponse({"conversions": found}, headers=NO_STORE)

    @router.get("/conversions/{conversion_id}/files/{which}")
    def conversion_file(conversion_id: int, which: str,
                        caller: AdminCaller = back_office) -> Response:
        with life.db.transaction() as c:
            conversion = records.get_conversion(c, conversion_id)
        if conversion is None or which not in ("mv35", "id_document"):
            raise NotFound("admin pin: no such conversion file")
        name, media = ((conversion.form_file, conversion.form_type) if which == "mv35"
                       else (conversion.document_file, conversion.document_type))
        try:
            data = read_file(provider.services.data_dir, name)
        except OSError as exc:
            raise NotFound("admin pin: conversion file missing on disk") from exc
        return Response(data, media_type=media, headers={
            **NO_STORE, "X-Content-Type-Options": "nosniff",
            "Content-Disposition": f'attachment; filename="conversion-{conversion_id}-{which}"'})

    async def _decide(request: Request, conversion_id: int, caller: AdminCaller,
                      approve: bool) -> JSONResponse:
        body = await _body(request, "operator", "reason")
        try:
            decided = await in_thread(
                lambda: life.decide_conversion(conversion_id, approve=approve,
                                       operator=_operator(caller, body),
                                       reason=body["reason"]))
        except LifecycleError as exc:
            raise _conflict(exc) from exc
        return JSONResponse({"conversion": decided.public()}, headers=NO_STORE)

    @router.post("/conversions/{conversion_id}/approve")
    async def approve(request: Request, conversion_id: int,
                      caller: AdminCaller = back_office) -> JSONResponse:
        return await _decide(request, conversion_id, caller, True)

    @router.post("/conversions/{conversion_id}/reject")
    async def reject(request: Request, conversion_id: int,
                     caller: AdminCaller = back_office) -> JSONResponse:
        return await _decide(request, conversion_id, caller, False)

    @router.post("/revoke")
    async def revoke(request: Request, caller: AdminCaller = back_office) -> JSONResponse:
        body = await _body(request, "fiscal_code", "operator", "reason")
        cf = _cf(body["fiscal_code"])
        channel = "telephone" if (await _optional(request, "channel")) == "telephone" else "web"
        done = await in_thread(lambda: life.revoke(
            cf, actor=_operator(caller, body), reason=body["reason"],
            channel=channel))  # type: ignore[arg-type]
        if not done:
            raise Conflict("admin pin: nothing to revoke")
        return JSONResponse({"revoked": True, "channel": channel}, headers=NO_STORE)

    @router.post("/letters/reissue")
    async def reissue(request: Request, caller: AdminCaller = back_office) -> JSONResponse:
        body = await _body(request, "fiscal_code", "operator", "reason")
        cf = _cf(body["fiscal_code"])
        try:
            issued = await in_thread(lambda: life.reissue_letter(
                cf, None, actor=_operator(caller, body), reason=body["reason"]))
        except LifecycleError as exc:
            raise _conflict(exc) from exc
        return JSONResponse({"practice_number": issued.practice_number}, headers=NO_STORE)

    @router.get("/outbox")
    def outbox(status: str | None = None, fiscal_code: str | None = None,
               reference: str | None = None, limit: int = 100,
               caller: AdminCaller = back_office) -> JSONResponse:
        try:
            wanted = Status(status) if status else None
        except ValueError as exc:
            raise BadRequest("admin pin: unknown outbox status") from exc
        found = life.outbox.list(status=wanted, fiscal_code=_cf(fiscal_code) if fiscal_code
                                 else None, reference=reference, limit=min(max(limit, 1), 1000))
        return JSONResponse({"counts": life.outbox.counts(),
                             "messages": [m.public() for m in found]}, headers=NO_STORE)

    @router.post("/outbox/{message_id}/retry")
    async def retry(request: Request, message_id: int,
                    caller: AdminCaller = back_office) -> JSONResponse:
        body = await _body(request, "operator", "reason")

        def run() -> bool:
            with life.db.transaction():
                ok = life.outbox.retry(message_id, life.clock.now())
                if ok:
                    life.audit.record("pin.outbox.retry", message_id=message_id,
                                      operator=_operator(caller, body), reason=body["reason"])
            return ok

        if not await in_thread(run):
            raise Conflict("admin pin: message unknown or already sent")
        life.kick()
        return JSONResponse({"retrying": True}, headers=NO_STORE)

    @router.post("/telephone/verify")
    async def verify_telephone(request: Request, caller: AdminCaller = contact_center
                               ) -> JSONResponse:
        body = await _body(request, "fiscal_code", "telephone_pin", "operator")
        cf = _cf(body["fiscal_code"])
        pin = re.sub(r"\s", "", body["telephone_pin"])
        await in_thread(provider.limiter.check, "telephone_verify", cf,
                        f"client:{caller.client_id}")
        ok = await in_thread(lambda: life.verify_telephone(
            cf, pin, operator=_operator(caller, body)))
        return JSONResponse({"verified": ok}, headers=NO_STORE)

    return router


async def _optional(request: Request, key: str) -> Any:
    try:
        data = json.loads(await request.body() or b"{}")
    except ValueError:
        return None
    return data.get(key) if isinstance(data, dict) else None
