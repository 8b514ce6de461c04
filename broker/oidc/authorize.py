"""Validation of an authorization request into an ``AuthRequest``.

Two kinds of failure, as RFC 6749 4.1.2.1 demands:

- before the client and its exact ``redirect_uri`` are known to be genuine, the error is
  ours to show (``InvalidAuthorizationRequest``, an error page): redirecting anywhere
  would make the broker an open redirector;
- after that, it goes back to the RP (``RedirectableError``), with ``state`` and ``iss``.

What we accept: ``response_type=code`` only (query response mode), ``openid`` among
scopes the client is registered for, PKCE S256 always, ``prompt`` of ``none``, ``login``,
``consent`` (``none`` alone), ``max_age``, ``acr_values``, ``claims`` (JSON object with
``id_token``/``userinfo`` members), ``login_hint``, ``ui_locales``, ``idp_hint``,
``nonce``, ``state``. Request objects (``request``, ``request_uri``) are refused.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from broker.errors import BadRequest, Text
from broker.model import AuthRequest
from broker.oidc.claims import requirement
from broker.oidc.clients import Client, ClientRegistry
from broker.oidc.server import check_challenge

MAX_PARAM = 4096
# select_account asks again which role the session acts in (broker.login.roles).
PROMPTS = frozenset({"none", "login", "consent", "select_account"})


class InvalidAuthorizationRequest(BadRequest):
    """The RP sent something we cannot answer by redirect: an unknown client or URI."""

    code = "invalid_authorization_request"
    message = Text(
        "Il servizio che ti ha indirizzato qui ha inviato una richiesta di accesso non "
        "valida. Torna al servizio e riprova; se si ripete, segnalalo al servizio.",
        "The service that sent you here made an invalid sign-in request. Go back to the "
        "service and try again; if it happens again, tell the service.")


class RedirectableError(Exception):
    """An OIDC error to send back to a verified redirect URI."""

    def __init__(self, error: str, description: str, *, client: Client, redirect_uri: str,
                 state: str | None):
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.client = client
        self.redirect_uri = redirect_uri
        self.state = state


def parse(items: Iterable[tuple[str, str]], registry: ClientRegistry,
          now: datetime) -> tuple[Client, AuthRequest]:
    """Validate the request parameters; raise one of the two errors above."""
    multi: dict[str, list[str]] = {}
    for key, value in items:
        multi.setdefault(key, []).append(value)
    for key in ("client_id", "redirect_uri"):
        if len(multi.get(key, [])) > 1:
            raise InvalidAuthorizationRequest(f"repeated {key}")
    params = {k: v[0] for k, v in multi.items()}
    client = registry.get(params.get("client_id"))
    if client is None:
        raise InvalidAuthorizationRequest("unknown or missing client_id")
    redirect_uri = params.get("redirect_uri", "")
    if not client.check_redirect_uri(redirect_uri):
        raise InvalidAuthorizationRequest(
            f"redirect_uri not registered for client {client.client_id}")
    state = params.get("state")
    if state is not None and len(state) > MAX_PARAM:
        state = None

    def fail(error: str, description: str) -> RedirectableError:
        return RedirectableError(error, description, client=client,
                                 redirect_uri=redirect_uri, state=state)

    repeated = sorted(k for k, v in multi.items() if len(v) > 1)
    if repeated:
        raise fail("invalid_request", f"repeated parameters: {', '.join(repeated)}")
    if any(len(v) > MAX_PARAM for v in params.values()):
        raise fail("invalid_request", "a parameter is too long")
    if "request" in params:
        raise fail("request_not_supported", "request objects are not supported")
    if "request_uri" in params:
        raise fail("request_uri_not_supported", "request_uri is not supported")
    if params.get("response_type") != "code":
        raise fail("unsupported_response_type", "only response_type=code is supported")
    if params.get("response_mode", "query") != "query":
        raise fail("invalid_request", "only response_mode=query is supported")

    scopes = tuple(dict.fromkeys(params.get("scope", "").split()))
    if "openid" not in scopes:
        raise fail("invalid_scope", "scope must include openid")
    not_allowed = [s for s in scopes if s not in client.config.scopes]
    if not_allowed:
        raise fail("invalid_scope", f"scopes not allowed for this client: "
                                    f"{' '.join(not_allowed)}")

    why = check_challenge(params.get("code_challenge"), params.get("code_challenge_method"))
    if why:
        raise fail("invalid_request", why)

    prompt = tuple(dict.fromkeys(params.get("prompt", "").split()))
    if set(prompt) - PROMPTS:
        raise fail("invalid_request", "unsupported prompt value")
    if "none" in prompt and len(prompt) > 1:
        raise fail("invalid_request", "prompt=none cannot be combined with other values")

    max_age = None
    if "max_age" in params:
        raw = params["max_age"]
        if not raw.isdigit() or len(raw) > 9:
            raise fail("invalid_request", "max_age must be a non-negative integer")
        max_age = int(raw)

    claims = _claims(params.get("claims"), fail)
    acr_values = tuple(params.get("acr_values", "").split())
    required_privilege, required_acr = requirement(acr_values, claims,
                                                   client.config.required_privilege)
    nonce = params.get("nonce") or None
    auth = AuthRequest(
        tx_id=secrets.token_urlsafe(24), client_id=client.client_id,
        client_name=client.config.name, redirect_uri=redirect_uri, scopes=scopes,
        state=state, nonce=nonce, response_mode="query", prompt=prompt, max_age=max_age,
        acr_values=acr_values, claims=claims, login_hint=params.get("login_hint") or None,
        ui_locales=tuple(params.get("ui_locales", "").split()),
        idp_hint=params.get("idp_hint") or None,
        code_challenge=params["code_challenge"], code_challenge_method="S256",
        required_privilege=required_privilege, required_acr=required_acr,
        accept_filed_with_ordinario=client.config.accept_filed_with_ordinario,
        provider_options=client.config.provider_options, created_at=now, params=params)
    return client, auth


def _claims(raw: str | None,
            fail: Callable[[str, str], RedirectableError]) -> dict[str, Any] | None:
    if not raw:
        return None
    try:
        claims = json.loads(raw)
    except ValueError:
        raise fail("invalid_request", "claims is not valid JSON") from None
    if not isinstance(claims, dict) or set(claims) - {"id_token", "userinfo"}:
        raise fail("invalid_request", "claims must be an object with id_token/userinfo")
    for member in claims.values():
        if member is not None and not isinstance(member, dict):
            raise fail("invalid_request", "claims members must be objects")
        for spec in (member or {}).values():
            if spec is not None and not isinstance(spec, dict):
                raise fail("invalid_request", "each requested claim must be null or an object")
    return claims
