"""Admin API of the embedded directory: abilitazioni, deleghe, delegations, comuni.

Authenticated as an admin client holding ``admin:directory`` (``broker.admin.auth``),
never with a citizen's cookie. Every change needs a ``reason`` (for example "richiesta
scritta del legale rappresentante") and lands in the audit trail with the calling
client and the reason. Codici fiscali travel in JSON bodies, never in URLs, so they
cannot reach access logs. Bad input gets a 400 and changes nothing.

::

    PUT  /admin/directory/comuni/{code}           {name, convenzione?, reason}
    GET  /admin/directory/comuni/{code}/operators  the enabled operators of a comune
    POST /admin/directory/operators/grant         {fiscal_code, comune, abilitazioni, reason}
    POST /admin/directory/operators/revoke        {fiscal_code, comune, abilitazioni?, reason}
    POST /admin/directory/deleghe                 {fiscal_code, kind, delega: {...}, reason}
    POST /admin/directory/deleghe/revoke          {fiscal_code, kind, company_cf, reason}
    POST /admin/directory/delegations             {delegation: {...}, reason}
    POST /admin/directory/delegations/revoke      {delegator_cf, delegate_cf, reason}
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar

from fastapi import APIRouter, Body, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from broker.admin.auth import AdminAuth, AdminCaller
from broker.audit import AuditLog
from broker.clock import Clock
from broker.directory.base import Directory
from broker.directory.model import (
    Comune,
    Convenzione,
    Delega,
    Delegation,
    IntermediaryKind,
    OperatorGrant,
)
from broker.errors import BadRequest, NotFound, Text
from broker.fiscal_code import normalize_company, normalize_person

SCOPE = "admin:directory"
M = TypeVar("M", bound=BaseModel)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    reason: str = Field(min_length=3, max_length=500)


class ComuneBody(_Body):
    name: str = Field(min_length=1, max_length=200)
    convenzione: Convenzione | None = None


class GrantBody(_Body):
    fiscal_code: str
    comune: str
    abilitazioni: tuple[str, ...] = Field(min_length=1)


class RevokeBody(_Body):
    fiscal_code: str
    comune: str
    abilitazioni: tuple[str, ...] | None = None  # None: all of them


class DelegaBody(_Body):
    fiscal_code: str
    kind: IntermediaryKind
    delega: Delega


class DelegaRevokeBody(_Body):
    fiscal_code: str
    kind: IntermediaryKind
    company_cf: str


class DelegationBody(_Body):
    delegation: Delegation


class DelegationRevokeBody(_Body):
    delegator_cf: str
    delegate_cf: str


def _parse(model: type[M], payload: Any) -> M:
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}"
                             for e in exc.errors())
        raise BadRequest(f"invalid body: {problems}",
                         message=Text(f"Richiesta non valida: {problems}",
                                      f"Invalid request: {problems}")) from exc


def _grant_json(g: OperatorGrant | None) -> dict[str, Any] | None:
    return None if g is None else g.model_dump(mode="json")


def directory_admin_router(directory: Directory, trail: AuditLog, clock: Clock,
                           auth: AdminAuth) -> APIRouter:
    router = APIRouter(prefix="/admin/directory")
    admin = Depends(auth.require(SCOPE))

    def audit(request: Request, kind: str, caller: AdminCaller, **fields: Any) -> None:
        trail.record(kind, by=caller.client_id, **fields)

    def now(request: Request) -> datetime:
        return clock.now()

    @router.put("/comuni/{code}")
    def put_comune(code: str, request: Request, payload: Any = Body(...),
                   caller: AdminCaller = admin) -> dict[str, Any]:
        body = _parse(ComuneBody, payload)
        comune = _parse(Comune, {"code": code, "name": body.name,
                                 "convenzione": body.convenzione})
        directory.put_comune(comune)
        audit(request, "directory.comune", caller, comune=code, reason=body.reason,
              convenzione=comune.convenzione.model_dump(mode="json")
              if comune.convenzione else None)
        return comune.model_dump(mode="json")

    @router.get("/comuni/{code}/operators")
    def operators(code: str, request: Request, caller: AdminCaller = admin) -> dict[str, Any]:
        comune = directory.comune(code)
        if comune is None:
            raise NotFound(f"unknown comune {code!r}")
        return {"comune": comune.model_dump(mode="json"),
                "operators": [g.model_dump(mode="json") for g in directory.operators(code)]}

    @router.post("/operators/grant")
    def grant(request: Request, payload: Any = Body(...),
              caller: AdminCaller = admin) -> dict[str, Any]:
        body = _parse(GrantBody, payload)
        cf = normalize_person(body.fiscal_code)
        result = directory.grant(cf, body.comune, body.abilitazioni, by=caller.client_id,
                                 reason=body.reason, now=now(request))
        audit(request, "directory.grant", caller, fiscal_code=cf, comune=body.comune,
              added=list(body.abilitazioni), held=list(result.abilitazioni),
              reason=body.reason)
        return {"operator": _grant_json(result)}

    @router.post("/operators/revoke")
    def revoke(request: Request, payload: Any = Body(...),
               caller: AdminCaller = admin) -> dict[str, Any]:
        body = _parse(RevokeBody, payload)
        cf = normalize_person(body.fiscal_code)
        result = directory.revoke(cf, body.comune, body.abilitazioni, by=caller.client_id,
                                  reason=body.reason, now=now(request))
        audit(request, "directory.revoke", caller, fiscal_code=cf, comune=body.comune,
              removed=list(body.abilitazioni) if body.abilitazioni is not None else "all",
              held=list(result.abilitazioni) if result else [], reason=body.reason)
        return {"operator": _grant_json(result)}

    @router.post("/deleghe")
    def add_delega(request: Request, payload: Any = Body(...),
                   caller: AdminCaller = admin) -> dict[str, Any]:
        body = _parse(DelegaBody, payload)
        cf = normalize_person(body.fiscal_code)
        directory.add_delega(cf, body.kind, body.delega)
        audit(request, "directory.delega", caller, fiscal_code=cf, intermediary=body.kind,
              delega=body.delega.model_dump(mode="json"), reason=body.reason)
        return {"ok": True}

    @router.post("/deleghe/revoke")
    def revoke_delega(request: Request, payload: Any = Body(...),
                      caller: AdminCaller = admin) -> dict[str, Any]:
        body = _parse(DelegaRevokeBody, payload)
        cf = normalize_person(body.fiscal_code)
        company = normalize_company(body.company_cf)
        found = directory.revoke_delega(cf, body.kind, company)
        if not found:
            raise NotFound("no such delega")
        audit(request, "directory.delega_revoked", caller, fiscal_code=cf,
              intermediary=body.kind,
              company_cf=company, reason=body.reason)
        return {"ok": True}

    @router.post("/delegations")
    def add_delegation(request: Request, payload: Any = Body(...),
                       caller: AdminCaller = admin) -> dict[str, Any]:
        body = _parse(DelegationBody, payload)
        directory.add_delegation(body.delegation)
        audit(request, "directory.delegation", caller,
              delegation=body.delegation.model_dump(mode="json"), reason=body.reason)
        return {"ok": True}

    @router.post("/delegations/revoke")
    def revoke_delegation(request: Request, payload: Any = Body(...),
                          caller: AdminCaller = admin) -> dict[str, Any]:
        body = _parse(DelegationRevokeBody, payload)
        delegator, delegate = (normalize_person(body.delegator_cf),
                               normalize_person(body.delegate_cf))
        if not directory.revoke_delegation(delegator, delegate):
            raise NotFound("no such delegation")
        audit(request, "directory.delegation_revoked", caller, delegator_cf=delegator,
              delegate_cf=delegate, reason=body.reason)
        return {"ok": True}

    return router
