"""The one place where an error becomes an answer.

Every ``BrokerError`` raised anywhere (a route, a provider's refusal the hub raised, the
fast lane) comes here, as do FastAPI's validation errors, unknown routes and surprises:

- a citizen page (``error.html``): the error's readable message in the page's language,
  the ``error_id`` the log line carries, and a next step: while a login is in progress
  (the hub keeps it on the request as ``varco_auth``) a link back to the choice of
  sign-in method and the way back to the service, except when the login itself is gone;
- JSON for machine clients: the admin APIs (``error``, ``error_description``,
  ``error_id``) and the OAuth endpoints (RFC 6749 section 5.2 names; an outage is
  ``temporarily_unavailable``), never an HTML page an RP library cannot read.

The detail goes to the log only. A surprise (a bug) is a 500 with its traceback logged;
every expected error is logged on one line.
"""

from __future__ import annotations

import logging

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from broker.errors import BadRequest, BrokerError, LoginExpired, NotFound, ServiceUnavailable, Text
from broker.http.pages import Renderer
from broker.model import AuthRequest

log = logging.getLogger("varco.app")
API_PREFIXES = ("/admin/", "/api/")  # machine clients: errors as JSON, not pages
OAUTH_PATHS = frozenset({"/token", "/introspect", "/revoke", "/userinfo"})
CHOOSE_AGAIN = Text("Scegli un altro metodo di accesso", "Choose another sign-in method")
NO_STORE = {"Cache-Control": "no-store"}


class ErrorPages:
    def __init__(self, renderer: Renderer):
        self.renderer = renderer

    async def handle(self, request: Request, exc: Exception) -> Response:
        """The exception handler of the app and of the fast lane."""
        return self.answer(request, as_broker_error(request, exc))

    def answer(self, request: Request, error: BrokerError) -> Response:
        log.warning("error_id=%s code=%s status=%s path=%s detail=%s", error.error_id,
                    error.code, error.status, request.url.path, error.detail)
        path = request.url.path
        if path.startswith(API_PREFIXES):
            return JSONResponse({"error": error.code, "error_description": error.message.en,
                                 "error_id": error.error_id}, status_code=error.status,
                                headers=NO_STORE)
        if path in OAUTH_PATHS:
            return JSONResponse({"error": oauth_error(error),
                                 "error_description": error.message.en},
                                status_code=error.status, headers=NO_STORE)
        auth: AuthRequest | None = getattr(request.state, "varco_auth", None)
        lang = self.renderer.language(request, auth.ui_locales if auth else ())
        tx = auth.tx_id if auth is not None and not isinstance(error, LoginExpired) else None
        links = []
        if tx is not None:
            links.append({"url": f"/login?tx={tx}", "text": CHOOSE_AGAIN.get(lang)})
        return self.renderer.page(request, "error.html", {
            "message": error.message.get(lang), "error_id": error.error_id,
            "links": links, "tx": tx}, status=error.status)


def as_broker_error(request: Request, exc: Exception) -> BrokerError:
    """Any exception as the ``BrokerError`` it amounts to (a surprise: a logged 500)."""
    if isinstance(exc, BrokerError):
        return exc
    if isinstance(exc, RequestValidationError):
        fields = ",".join(".".join(str(p) for p in e["loc"]) for e in exc.errors())
        return BadRequest(f"invalid request fields: {fields}")
    if isinstance(exc, StarletteHTTPException):
        if exc.status_code == 404:
            return NotFound(f"no route {request.url.path}")
        return BadRequest(f"http {exc.status_code}", status=exc.status_code)
    error = ServiceUnavailable("unexpected error", status=500)
    log.error("error_id=%s unexpected error on %s", error.error_id, request.url.path,
              exc_info=exc)
    return error


def oauth_error(error: BrokerError) -> str:
    """The RFC 6749 error code a client library expects for ``error``."""
    if error.status == 503:
        return "temporarily_unavailable"
    if error.status >= 500:
        return "server_error"
    return "invalid_request"
