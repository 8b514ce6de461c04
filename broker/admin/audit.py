"""Admin API for the audit trail; other admin routers (directory, PIN back office) sit beside it.

Every route depends on ``AdminAuth.require(scope)``: client authentication, never a cookie.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from broker.admin.auth import AdminAuth, AdminCaller
from broker.audit import AuditLog


def audit_router(audit: AuditLog, admin: AdminAuth) -> APIRouter:
    router = APIRouter()
    auditor = Depends(admin.require("admin:audit"))

    @router.get("/admin/audit/verify")
    def verify(caller: AdminCaller = auditor) -> dict[str, Any]:
        ok, summary = audit.verify()
        return {"intact": ok, "summary": summary}

    @router.get("/admin/audit/entries")
    def entries(kind: str | None = None, limit: int = 100,
                caller: AdminCaller = auditor) -> dict[str, Any]:
        rows = audit.entries(kind, min(max(limit, 1), 1000))
        return {"entries": [
            {"seq": e.seq, "at": e.at, "kind": e.kind, "data": e.data} for e in rows]}

    return router
