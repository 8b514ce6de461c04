"""The test IdP's web side: an APIRouter (mount it in the demo broker at ``/test-idp``)
and a standalone app (``python -m providers.saml.testidp``) for tests and other setups.

Routes (relative to the mount point): ``GET /metadata``; ``GET|POST /sso`` (verifies
the signed AuthnRequest, shows the login form); ``POST /login`` (checks the user,
answers the SP with a signed response through an auto-submitted POST form, or with
``ErrorCode nr25`` on "Annulla" and ``nr20`` when the user's level is too low);
``GET|POST /slo`` (answers a LogoutRequest with a signed LogoutResponse).
"""

from __future__ import annotations

import html
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from fastapi import APIRouter, FastAPI, Form, Response
from fastapi.responses import HTMLResponse
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT

from providers.saml.testidp.idp import IdpRequest, TestIdp
from providers.saml.testidp.users import DEFAULT_USERS, TestUser

PENDING_TTL = 600


class _Pending:
    """AuthnRequests waiting for the login form (in memory: a test IdP has one process)."""

    def __init__(self) -> None:
        self._items: dict[str, tuple[float, IdpRequest]] = {}
        self._lock = threading.Lock()

    def put(self, req: IdpRequest) -> str:
        token = secrets.token_urlsafe(18)
        now = time.monotonic()
        with self._lock:
            self._items = {k: v for k, v in self._items.items() if now - v[0] < PENDING_TTL}
            self._items[token] = (now, req)
        return token

    def take(self, token: str) -> IdpRequest | None:
        with self._lock:
            item = self._items.pop(token, None)
        return item[1] if item else None


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        '<!DOCTYPE html><html lang="it"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title></head><body><main>{body}</main></body></html>",
        status_code=status)


def _post_form(action: str, fields: dict[str, str]) -> HTMLResponse:
    inputs = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                     for k, v in fields.items() if v is not None)
    return HTMLResponse(
        '<!DOCTYPE html><html lang="it"><head><meta charset="utf-8"><title>Test IdP</title>'
        '</head><body onload="document.forms[0].submit()">'
        f'<form method="post" action="{html.escape(action)}">{inputs}'
        '<noscript><button type="submit">Continua / Continue</button></noscript>'
        "</form></body></html>")


def _login_form(token: str, req: IdpRequest, error: str = "", status: int = 200,
                users: Iterable[TestUser] = DEFAULT_USERS, title: str = "Varco Test IdP"
                ) -> HTMLResponse:
    users_html = "".join(
        f"<li><code>{html.escape(u.username)}</code> / <code>{html.escape(u.password)}"
        f"</code> (SpidL{u.max_level})</li>" for u in users)
    err = f'<p role="alert">{html.escape(error)}</p>' if error else ""
    return _page(title, f"""
<h1>{html.escape(title)}</h1>
<p>Accesso richiesto da / Sign-in requested by: <code>{html.escape(req.sp_entity_id)}</code>,
livello / level <code>{html.escape(req.acr)}</code></p>
{err}
<form method="post" action="login">
  <input type="hidden" name="token" value="{html.escape(token)}">
  <p><label for="username">Nome utente / Username</label>
     <input id="username" name="username" autocomplete="username" required></p>
  <p><label for="password">Password</label>
     <input id="password" name="password" type="password" autocomplete="current-password"></p>
  <p><button type="submit" name="action" value="login">Entra / Sign in</button>
     <button type="submit" name="action" value="cancel" formnovalidate>Annulla / Cancel</button></p>
</form>
<p>Utenti di prova / Test users:</p><ul>{users_html}</ul>""", status)


def test_idp_router(idp: TestIdp) -> APIRouter:
    """The IdP's routes; blocking pysaml2 work runs in FastAPI's thread pool (plain defs)."""
    router = APIRouter()
    pending = _Pending()

    @router.get("/metadata")
    def metadata() -> Response:
        return Response(idp.metadata_xml(), media_type="application/samlmetadata+xml")

    def _sso(binding: str, saml_request: str | None, relay: str | None, sig_alg: str | None,
             signature: str | None) -> Response:
        if not saml_request:
            return _page("Errore", "<p>SAMLRequest mancante / missing.</p>", 400)
        try:
            req = idp.parse_request(binding, saml_request, relay, sig_alg, signature)
        except Exception as exc:  # pysaml2 raises many types for bad requests
            return _page("Errore", f"<p>AuthnRequest rifiutata / refused: "
                                   f"{html.escape(type(exc).__name__)}</p>", 400)
        return _login_form(pending.put(req), req, users=idp.users.values(), title=idp.name)

    @router.get("/sso")
    def sso_redirect(SAMLRequest: str | None = None, RelayState: str | None = None,
                     SigAlg: str | None = None, Signature: str | None = None) -> Response:
        return _sso(BINDING_HTTP_REDIRECT, SAMLRequest, RelayState, SigAlg, Signature)

    @router.post("/sso")
    def sso_post(SAMLRequest: str = Form(""), RelayState: str | None = Form(None)) -> Response:
        return _sso(BINDING_HTTP_POST, SAMLRequest, RelayState, None, None)

    @router.post("/login")
    def login(token: str = Form(""), username: str = Form(""), password: str = Form(""),
              action: str = Form("login")) -> Response:
        req = pending.take(token)
        if req is None:
            return _page("Errore", "<p>Richiesta scaduta / Request expired.</p>", 400)
        if action == "cancel":
            xml = idp.error_xml(req, 25)
        else:
            user = idp.user(username, password)
            if user is None:
                return _login_form(pending.put(req), req,
                                   "Credenziali errate / Wrong credentials", 401,
                                   users=idp.users.values(), title=idp.name)
            if idp.answer_level(req, user) is None:
                xml = idp.error_xml(req, 20)
            elif not user.serves(req.purpose):  # Avviso SPID n.18: not that kind of identity
                xml = idp.error_xml(req, 30)
            else:
                xml = idp.response_xml(req, user)
        return _post_form(req.acs_url, {"SAMLResponse": TestIdp.encode(xml),
                                        "RelayState": req.relay_state or ""})

    from providers.saml.testidp.slo import add_slo_routes

    add_slo_routes(router, idp)
    return router


def create_app(*, base_url: str, data_dir: Path, sp_metadata: Callable[[], bytes | str],
               entity_id: str | None = None, profile: str = "spid") -> FastAPI:
    """A standalone IdP whose routes live at the root of ``base_url`` (``profile`` spid|cie)."""
    idp = TestIdp(entity_id=entity_id or base_url, base_url=base_url, key_dir=data_dir,
                  sp_metadata=sp_metadata, profile=profile)
    app = FastAPI(title="Varco Test IdP", docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(test_idp_router(idp))
    app.state.idp = idp
    return app
