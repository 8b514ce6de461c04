"""Who may call the admin APIs: registered clients holding an admin scope, never a cookie.

Back-office tools (abilitazioni, PIN back office, the contact center) are OAuth clients
in the same registry as the RPs, with ``admin_scopes``. They authenticate on every
call with their registered client authentication (HTTP Basic ``client_secret_basic``,
or a ``private_key_jwt`` assertion in a form body), exactly as at the token endpoint,
so there is one place that checks client credentials. A browser's session cookie is
never accepted here, which also rules out CSRF against these endpoints.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from fastapi import Request
from starlette.requests import Request as StarletteRequest

from broker.errors import BrokerError, Text
from broker.http.forms import BadForm
from broker.http.threads import in_thread
from broker.model import Frozen

if TYPE_CHECKING:
    from broker.oidc.core import OidcCore


class AdminAuthError(BrokerError):
    status = 401
    code = "invalid_client"
    message = Text("Autenticazione del client amministrativo non valida.",
                   "Admin client authentication failed.")


class AdminForbidden(BrokerError):
    status = 403
    code = "insufficient_scope"
    message = Text("Il client non ha l'autorizzazione per questa operazione.",
                   "The client is not allowed to perform this operation.")


class AdminCaller(Frozen):
    """The authenticated admin client: recorded as the actor in the audit trail."""

    client_id: str
    scopes: tuple[str, ...]


class AdminAuth:
    """Client authentication for the admin APIs, against the OIDC client registry."""

    def __init__(self, core: OidcCore):
        self.core = core

    def require(self, scope: str) -> Callable[[Request], Awaitable[AdminCaller]]:
        """A FastAPI dependency: ``caller: AdminCaller = Depends(admin.require("admin:pin"))``.

        Raises ``AdminAuthError`` (401) for missing or wrong credentials and
        ``AdminForbidden`` (403) when the client lacks ``scope``.
        """
        core = self.core

        async def dependency(request: StarletteRequest) -> AdminCaller:
            try:
                src = await core.http_input(request)
            except BadForm as exc:
                raise AdminAuthError("admin client auth failed: unreadable form") from exc
            try:
                client = await in_thread(core.server.authenticate_client,
                                         core.server.create_oauth2_request(src),
                                         ["client_secret_basic", "client_secret_post",
                                          "private_key_jwt"], "admin")
            except Exception as exc:  # Authlib raises its OAuth2Error family here
                raise AdminAuthError(
                    f"admin client auth failed: {type(exc).__name__}") from exc
            scopes = tuple(client.config.admin_scopes)
            if scope not in scopes:
                raise AdminForbidden(f"client {client.client_id} lacks {scope}")
            return AdminCaller(client_id=client.client_id, scopes=scopes)

        return dependency
