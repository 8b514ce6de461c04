"""Admin API for the audit trail; other admin routers (directory, PIN back office) sit beside it.

Every route depends on ``require_admin(scope)``: client authentication, never a cookie.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from broker.admin.auth import AdminCaller, require_admin


def audit_router() -> APIRouter:
    router = APIRouter()

    @router.get("/admin/audit/verify")
    def verify(request: Request,
               caller: AdminCaller = Depends(require_admin("admin:audit"))) -> dict:
        ok, summary = request.app.state.ctx.audit.verify()
        return {"intact": ok, "summary": summary}

    @router.get("/admin/audit/entries")
    def entries(request: Request, kind: str | None = None, limit: int = 100,
                caller: AdminCaller = Depends(require_admin("admin:audit"))) -> dict:
        rows = request.app.state.ctx.audit.entries(kind, min(max(limit, 1), 1000))
        return {"entries": [
            {"seq": e.seq, "at": e.at, "kind": e.kind, "data": e.data} for e in rows]}

    return router
