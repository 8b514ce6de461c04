"""RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0), ``end_session_endpoint``.

Logging out ends the broker session for every RP and revokes every token issued in it.

- With a valid ``id_token_hint`` (our signature and issuer; an expired one is fine) the
  session it names ends at once. A hint we did not sign is refused with an error page.
- Without one, or when this browser holds a different session than the hint names, the
  citizen confirms on a page first (a CSRF-protected form): a third-party page must not
  be able to log someone out silently.
- The browser goes back to ``post_logout_redirect_uri`` (with ``state``) only if that
  URI is registered, exactly, for the client (``client_id``, or the hint's ``aud``);
  otherwise it sees our own "you are signed out" page.

After the broker session ends, the login hub runs provider-side logout (SAML Single
Logout at the SPID IdP) for the logins the session held, and the IdP sends the browser on
to the same destination. The RPs of the session hear of it through
``broker.oidc.backchannel``: a signed logout token POSTed to those with a back channel,
and, for those with only a front channel, an iframe on the signed-out page (then a
link, not a silent redirect, takes the citizen to ``post_logout_redirect_uri``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from broker.errors import BadRequest, Text
from broker.http.pages import SECURITY_HEADERS
from broker.http.threads import in_thread
from broker.oidc.clients import Client
from broker.oidc.idtoken import InvalidHint, verify_hint

if TYPE_CHECKING:
    from broker.context import BrokerContext
    from broker.login.hub import LoginHub
    from broker.oidc.core import OidcCore

NS_SID = "oidc:sid"


class InvalidLogoutRequest(BadRequest):
    code = "invalid_logout_request"
    message = Text(
        "La richiesta di uscita non è valida. Per uscire in sicurezza chiudi il browser.",
        "The sign-out request is not valid. To sign out safely, close your browser.")


class LogoutRoutes:
    def __init__(self, ctx: BrokerContext, core: OidcCore, hub: LoginHub):
        self.ctx = ctx
        self.front = core  # keys, issuer, registry, sessions' end (``broker.oidc.core``)
        self.hub = hub

    def mount(self, router: APIRouter) -> None:
        router.add_api_route("/logout", self.logout, methods=["GET", "POST"])
        router.add_api_route("/logout/confirm", self.confirm, methods=["POST"])
        router.add_api_route("/logout/done", self.done, methods=["GET"])

    def done(self, request: Request) -> Response:
        """Where provider logout returns when the RP gave no post-logout URI."""
        return self.ctx.templates.render(request, "oidc/logged_out.html",
                                         {"stayed": False, "client": None})

    async def logout(self, request: Request) -> Response:
        if request.method == "POST":
            items = (await request.form()).items()
        else:
            items = request.query_params.items()
        params = {k: v for k, v in items if isinstance(v, str)}
        response = await in_thread(self._logout, request, params)
        return await self._provider_logout(request, response)

    def _logout(self, request: Request, params: dict[str, str]) -> Response:
        hint = params.get("id_token_hint")
        claims: dict[str, Any] | None = None
        if hint:
            try:
                claims = verify_hint(self.front.keys, hint, self.front.issuer)
            except InvalidHint as exc:
                self.ctx.audit.record("oidc.logout_rejected", reason=str(exc))
                raise InvalidLogoutRequest(f"id_token_hint refused: {exc}") from None
        client = self._client(params.get("client_id"), claims)
        target = self._target(client, params.get("post_logout_redirect_uri"))
        state = params.get("state")
        current = self.ctx.sessions.current(request)
        hinted_sid = claims.get("sid") if claims else None
        if claims is not None and (
                current is None or self.front.public_sid(current.sid) == hinted_sid):
            return self._end(request, hinted_sid, target, state, client)
        return self.ctx.templates.render(request, "oidc/logout_confirm.html", {
            "client_name": client.config.name if client else None,
            "client_id": client.client_id if client else "",
            "post_logout_redirect_uri": target or "", "state": state or "",
            "hinted_sid": hinted_sid or "",
        }, ui_locales=tuple(params.get("ui_locales", "").split()))

    async def confirm(self, request: Request) -> Response:
        form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
        response = await in_thread(self._confirm, request, form)
        return await self._provider_logout(request, response)

    async def _provider_logout(self, request: Request, response: Response) -> Response:
        """Let the providers of the ended sessions log out too (SAML SLO), then go on."""
        ended = getattr(request.state, "ended_sessions", [])
        if not ended:
            return response
        return_to = response.headers.get("location") or f"{self.front.issuer}/logout/done"
        chained = await self.hub.provider_logout(request, ended, return_to)
        if chained is None:
            return response
        self.ctx.sessions.clear_cookie(chained)
        return chained

    def _confirm(self, request: Request, form: dict[str, str]) -> Response:
        self.ctx.templates.verify_csrf(request, form.get("csrf_token"))
        client = self._client(form.get("client_id"), None)
        target = self._target(client, form.get("post_logout_redirect_uri"))
        if form.get("decision") != "logout":
            return self.ctx.templates.render(request, "oidc/logged_out.html",
                                             {"stayed": True, "client": None})
        return self._end(request, form.get("hinted_sid") or None, target,
                         form.get("state"), client)

    def _client(self, client_id: str | None, claims: dict[str, Any] | None) -> Client | None:
        aud = (claims or {}).get("aud")
        auds = [aud] if isinstance(aud, str) else list(aud or [])
        if client_id:
            if claims is not None and client_id not in auds:
                raise InvalidLogoutRequest("client_id is not the id_token_hint's audience")
            return self.front.registry.get(client_id)
        if len(auds) == 1:
            return self.front.registry.get(auds[0])
        return None

    @staticmethod
    def _target(client: Client | None, uri: str | None) -> str | None:
        if client and uri and uri in client.post_logout_redirect_uris:
            return uri
        return None

    def _end(self, request: Request, hinted_sid: str | None, target: str | None,
             state: str | None, client: Client | None) -> Response:
        sids: list[str] = []
        current = self.ctx.sessions.current(request)
        if current is not None:
            sids.append(current.sid)
        if hinted_sid:
            raw = self.ctx.ephemeral.get(NS_SID, hinted_sid)
            if raw and raw not in sids:
                sids.append(raw)
        ended_sessions = []
        frames: list[str] = []
        for sid in sids:
            ended = self.front.end_session(sid, reason="rp_initiated",
                                           client_id=client.client_id if client else None)
            if ended is not None:
                ended_sessions.append(ended)
                frames += self.front.backchannel.frontchannel_urls(
                    ended, self.front.public_sid(sid))
        request.state.ended_sessions = ended_sessions
        response: Response
        if frames:  # front-channel RPs need this page to load their iframes
            query = urlencode({"state": state}) if state else ""
            sep = "&" if target and "?" in target else "?"
            response = self.ctx.templates.render(request, "oidc/logged_out.html", {
                "stayed": False, "client": client.config.name if client else None,
                "frontchannel": frames,
                "continue_to": (f"{target}{sep}{query}" if query else target) if target
                else None})
            response.headers["Content-Security-Policy"] = _csp_with_frames(frames)
        elif target:
            query = urlencode({"state": state}) if state else ""
            sep = "&" if "?" in target else "?"
            response = RedirectResponse(
                f"{target}{sep}{query}" if query else target, status_code=303)
        else:
            response = self.ctx.templates.render(request, "oidc/logged_out.html", {
                "stayed": False, "client": client.config.name if client else None})
        self.ctx.sessions.clear_cookie(response)
        return response


def _csp_with_frames(urls: list[str]) -> str:
    """Our page policy, letting exactly the front-channel RPs' origins be framed."""
    origins = sorted({f"{p.scheme}://{p.netloc}" for p in map(urlsplit, urls)})
    return SECURITY_HEADERS["Content-Security-Policy"] + "; frame-src " + " ".join(origins)
