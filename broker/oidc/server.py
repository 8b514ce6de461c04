"""The Authlib adapter: Authlib's OAuth 2.0 core driving our token-side endpoints.

Authlib is framework-free; this module gives it requests (``HttpInput``, built by the
FastAPI routes from an already read body), turns its ``(status, body, headers)`` into
Starlette responses, and fills its model hooks with ``TokenStore`` and the client
registry. What we change from Authlib's defaults, on purpose:

- PKCE S256 is required of *every* client; ``plain`` and a missing verifier are
  refused (Authlib accepts ``plain`` and enforces PKCE only for public clients).
- Tokens are opaque and short-lived (``tokens.access_token_lifetime``, 300 s by
  default, not Authlib's ten days); a refresh token is issued only for
  ``offline_access`` and rotated on each use.
- ``private_key_jwt`` is ours (pyjwt, injected clock, ``jti`` single use).
- ID tokens are signed by ``broker.oidc.idtoken`` with our keys and the client's alg.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Collection, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import jwt
from authlib.oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import (
    ClientMixin,
    InvalidGrantError,
    InvalidRequestError,
    JsonRequest,
    OAuth2Request,
    TokenMixin,
)
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant, RefreshTokenGrant
from authlib.oauth2.rfc6749.requests import OAuth2Payload
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge, create_s256_code_challenge
from authlib.oauth2.rfc7636.challenge import CODE_CHALLENGE_PATTERN, CODE_VERIFIER_PATTERN
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from starlette.responses import JSONResponse, Response

from broker.oidc.claims import released_claims, subject, user_key
from broker.oidc.clients import Client, ClientRegistry
from broker.oidc.idtoken import half_hash, sign
from broker.oidc.keys import KeyStore
from broker.oidc.tokens import CodeRecord, Grant, TokenRecord, TokenStore
from broker.store.base import EphemeralStore

log = logging.getLogger(__name__)

AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
NS_JTI = "oidc:jti"
MAX_ASSERTION_LIFETIME = 600


@dataclass(frozen=True)
class HttpInput:
    """The parts of an HTTP request Authlib needs, read once by the async route."""

    method: str
    uri: str
    headers: Mapping[str, str]
    form: dict[str, str] = field(default_factory=dict)
    datalist: dict[str, list[str]] = field(default_factory=dict)


class FormPayload(OAuth2Payload):
    """The form as Authlib reads it; ``datalist`` keeps every value of a repeated field."""

    def __init__(self, src: HttpInput):
        self._data = src.form
        self._datalist = src.datalist or {k: [v] for k, v in src.form.items()}

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> dict[str, list[str]]:
        return self._datalist


class VarcoRequest(OAuth2Request):
    def __init__(self, src: HttpInput):
        super().__init__(method=src.method, uri=src.uri, headers=src.headers)
        self._src = src
        self.payload = FormPayload(src)

    @property
    def args(self) -> dict[str, str | None]:
        return {}

    @property
    def form(self) -> dict[str, str]:
        return self._src.form


def check_challenge(challenge: str | None, method: str | None) -> str | None:
    """Why an authorization request's PKCE parameters are refused, or None."""
    if not challenge:
        return "code_challenge is required (PKCE with S256)"
    if method != "S256":
        return "code_challenge_method must be S256"
    if not CODE_CHALLENGE_PATTERN.match(challenge):
        return "code_challenge is malformed"
    return None


class S256Required(CodeChallenge):
    """PKCE for every client, S256 only; the verifier is compared in constant time."""

    DEFAULT_CODE_CHALLENGE_METHOD = "S256"
    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]  # noqa: RUF012 (Authlib's class attribute)

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        why = check_challenge(data.get("code_challenge"), data.get("code_challenge_method"))
        if why:
            raise InvalidRequestError(why)

    def validate_code_verifier(self, grant: Any, result: Any) -> None:
        verifier = grant.request.form.get("code_verifier")
        record: CodeRecord = grant.request.authorization_code
        if not verifier:
            raise InvalidRequestError("Missing 'code_verifier'")
        if not CODE_VERIFIER_PATTERN.match(verifier):
            raise InvalidRequestError("Invalid 'code_verifier'")
        expected = record.code_challenge
        # Authlib's function is untyped: str in, str out.
        challenge: str = create_s256_code_challenge(verifier)  # type: ignore[no-untyped-call]
        if not hmac.compare_digest(challenge, expected):
            raise InvalidGrantError(description="Code challenge failed.")


class CodeGrant(AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS

    def query_authorization_code(self, code: str, client: ClientMixin) -> CodeRecord | None:
        server: VarcoAuthorizationServer = self.server
        client_id = client.get_client_id()
        record = server.tokens.redeem_code(code)
        if record is None:
            server.audit("oidc.code_rejected", client_id=client_id)
            return None
        if record.grant.client_id != client_id:
            server.tokens.revoke_grant(record.grant.grant_id)
            server.audit("oidc.code_wrong_client", client_id=client_id)
            return None
        return record

    def delete_authorization_code(self, authorization_code: CodeRecord) -> None:
        """Nothing to do: ``redeem_code`` already consumed it atomically."""

    def authenticate_user(self, authorization_code: CodeRecord) -> Grant:
        return authorization_code.grant


class RefreshGrant(RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True

    # None is Authlib's invalid_grant; its stub says a TokenMixin is always returned.
    def authenticate_refresh_token(  # type: ignore[override]
            self, refresh_token: str) -> TokenRecord | None:
        server: VarcoAuthorizationServer = self.server
        record = server.tokens.rotate_refresh(refresh_token)
        if record is None:
            server.audit("oidc.refresh_rejected")
            return None
        client = self.request.client  # authenticated before this is asked
        if client is None or not record.check_client(client):
            server.tokens.revoke_grant(record.grant.grant_id)
            return None
        return record

    def authenticate_user(self, refresh_token: TokenRecord) -> Grant:
        return refresh_token.grant

    def revoke_old_credential(self, refresh_token: TokenMixin) -> None:
        """Nothing to do: ``rotate_refresh`` already consumed it atomically."""


class IdToken:
    """Grant extension: adds a signed ID token to token responses with ``openid``."""

    def __call__(self, grant: Any) -> None:
        grant.register_hook("after_create_token_response", self.process_token)

    def process_token(self, grant: Any, response: tuple[int, dict[str, Any], Any]) -> None:
        _, token, _ = response
        g: Grant = grant.request.user
        if "openid" not in token.get("scope", "").split():
            return
        server: VarcoAuthorizationServer = grant.server
        client: Client = grant.request.client
        token["id_token"] = server.id_token(
            client, g, token["access_token"],
            nonce=g.nonce if grant.GRANT_TYPE == "authorization_code" else None)


class Introspection(IntrospectionEndpoint):
    CLIENT_AUTH_METHODS = AUTH_METHODS

    def query_token(self, token_string: str, token_type_hint: str | None) -> TokenRecord | None:
        server: VarcoAuthorizationServer = self.server
        return server.tokens.lookup(token_string, token_type_hint)

    def check_permission(self, token: TokenRecord, client: Client, request: Any) -> bool:
        return token.check_client(client)  # a client sees only its own tokens

    def introspect_token(self, token: TokenRecord) -> dict[str, Any]:
        server: VarcoAuthorizationServer = self.server
        client = server.registry.get(token.grant.client_id)
        return {
            "active": True, "client_id": token.grant.client_id, "token_type":
            "Bearer" if token.kind == "access_token" else "refresh_token",
            "scope": token.get_scope(), "sub": server.sub_for(client, token.grant),
            "aud": token.grant.client_id, "iss": server.issuer, "exp": token.expires_at,
            "iat": token.issued_at, "acr": token.grant.user.acr,
        }


class Revocation(RevocationEndpoint):
    CLIENT_AUTH_METHODS = AUTH_METHODS

    def query_token(self, token_string: str, token_type_hint: str | None) -> _Presented | None:
        server: VarcoAuthorizationServer = self.server
        record = server.tokens.lookup(token_string, token_type_hint)
        return _Presented(token_string, record) if record else None

    def revoke_token(self, token: _Presented, request: Any) -> None:
        server: VarcoAuthorizationServer = self.server
        server.tokens.delete(token.value)
        if token.record.kind == "refresh_token":  # RFC 7009 2.1: the grant goes too
            server.tokens.revoke_grant(token.record.grant.grant_id)
        server.audit("oidc.revoked", client_id=token.record.grant.client_id,
                     token_kind=token.record.kind)


@dataclass(frozen=True)
class _Presented:
    value: str
    record: TokenRecord

    def check_client(self, client: Client) -> bool:
        return self.record.check_client(client)


class VarcoAuthorizationServer(AuthorizationServer):
    """Authlib's server bound to our registry, token store, keys and clock."""

    def __init__(self, *, issuer: str, registry: ClientRegistry, tokens: TokenStore,
                 keys: KeyStore, secret_key: bytes, ephemeral: EphemeralStore,
                 id_token_lifetime: int,
                 clock_skew: int, audit: Callable[..., None],
                 batch: Callable[[], AbstractContextManager[object]] = nullcontext):
        super().__init__(scopes_supported=None)
        self.issuer = issuer
        self.registry = registry
        self.tokens = tokens
        self.keys = keys
        self.secret_key = secret_key
        self.ephemeral = ephemeral
        self.id_token_lifetime = id_token_lifetime
        self.clock_skew = clock_skew
        self.audit = audit
        self.batch = batch  # Database.batch: the tokens and their audit entry, one commit
        self.token_endpoint = f"{issuer}/token"
        # Authlib takes any callable with BearerTokenGenerator's call signature; the stub
        # asks for that class.
        self.register_token_generator("default", self._generate)  # type: ignore[arg-type]
        self.register_client_auth_method("private_key_jwt", self._private_key_jwt)
        self.register_grant(CodeGrant, [S256Required(required=True), IdToken()])
        self.register_grant(RefreshGrant, [IdToken()])
        self.register_endpoint(Introspection)
        self.register_endpoint(Revocation)

    # --- framework adapter -----------------------------------------------------------
    # None is Authlib's invalid_client; its stub says a client is always returned.
    def query_client(self, client_id: str) -> Client | None:  # type: ignore[override]
        return self.registry.get(client_id)

    def authenticate_client(self, request: OAuth2Request, methods: Collection[str],
                            endpoint: str = "token") -> Client:
        """Authlib's client authentication, typed: every client comes from our registry."""
        client = super().authenticate_client(request, methods, endpoint)
        assert isinstance(client, Client)
        return client

    def save_token(self, token: dict[str, Any], request: Any) -> None:
        """Nothing to do: ``_generate`` stores tokens as it creates them."""

    def create_oauth2_request(self, request: HttpInput | OAuth2Request) -> OAuth2Request:
        return request if isinstance(request, OAuth2Request) else VarcoRequest(request)

    def create_json_request(self, request: Any) -> JsonRequest:
        raise NotImplementedError("no JSON endpoints")

    def handle_response(self, status: int, body: Any, headers: Any) -> Response:
        hdrs = dict(headers or [])
        if isinstance(body, dict):
            hdrs.pop("Content-Type", None)
            return JSONResponse(body, status_code=status, headers=hdrs)
        return Response(body or b"", status_code=status, headers=hdrs)

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        if name == "after_authenticate_client":
            client = kwargs.get("client")
            log.debug("client authenticated: %s", getattr(client, "client_id", None))

    # --- tokens ----------------------------------------------------------------------
    def _generate(self, grant_type: str, client: Client, user: Grant | None = None,
                  scope: str | None = None, expires_in: int | None = None,
                  include_refresh_token: bool = True) -> dict[str, Any]:
        assert user is not None
        scopes = tuple((scope or "").split())
        with self.batch():
            access, ttl = self.tokens.issue("access_token", user, scopes)
            token: dict[str, Any] = {"token_type": "Bearer", "access_token": access,
                                     "expires_in": ttl, "scope": " ".join(scopes)}
            if (include_refresh_token and "offline_access" in scopes
                    and client.check_grant_type("refresh_token")
                    and self.tokens.now() < user.expires_at):
                token["refresh_token"], _ = self.tokens.issue("refresh_token", user, scopes)
            self.audit("oidc.token", client_id=client.client_id, grant_type=grant_type,
                       refresh=("refresh_token" in token))
        return token

    def sub_for(self, client: Client | None, grant: Grant) -> str:
        cfg = client.config if client else None
        return subject(self.secret_key, user_key(grant.user),
                       subject_type=cfg.subject_type if cfg else "pairwise",
                       sector=(cfg.sector_identifier or cfg.client_id) if cfg
                       else grant.client_id)

    def id_token(self, client: Client, grant: Grant, access_token: str | None, *,
                 nonce: str | None) -> str:
        now = self.tokens.now()
        claims = released_claims(grant.user, self.sub_for(client, grant), grant.scopes,
                                 (grant.claims or {}).get("id_token"), client.config.scopes)
        claims.update({"iss": self.issuer, "aud": client.client_id, "iat": now,
                       "exp": now + self.id_token_lifetime, "sid": grant.sid,
                       "auth_time": grant.user.auth_time})
        if nonce:
            claims["nonce"] = nonce
        if access_token:
            claims["at_hash"] = half_hash(access_token)
        return sign(self.keys, client.config.id_token_signed_response_alg, claims)

    # --- private_key_jwt (RFC 7523 section 2.2) --------------------------------------
    def _private_key_jwt(self, query_client: Callable[[str], Client | None],
                         request: OAuth2Request) -> Client | None:
        form = request.form
        assertion = form.get("client_assertion")
        if form.get("client_assertion_type") != JWT_BEARER or not assertion:
            return None
        try:
            unverified = jwt.decode(assertion, options={"verify_signature": False})
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError:
            return None
        client_id = unverified.get("sub")
        if not isinstance(client_id, str) or (
                form.get("client_id") and form.get("client_id") != client_id):
            return None
        client = query_client(client_id)
        method = client.config.token_endpoint_auth_method if client else None
        if client is None or method != "private_key_jwt":
            return None
        claims = self._verify_assertion(client, assertion, header, request.uri)
        if claims is None:
            self.audit("oidc.client_assertion_rejected", client_id=client_id)
            return None
        ttl = max(1, int(claims["exp"]) - self.tokens.now() + self.clock_skew)
        if not self.ephemeral.add(NS_JTI, f"{client_id}|{claims['jti']}", "1", ttl):
            self.audit("oidc.client_assertion_replay", client_id=client_id)
            return None
        return client

    def _verify_assertion(self, client: Client, assertion: str, header: dict[str, Any],
                          uri: str) -> dict[str, Any] | None:
        alg = header.get("alg")
        if alg not in ("ES256", "RS256", "PS256"):
            return None
        audiences = [self.token_endpoint, self.issuer, uri.split("?")[0]]
        kid = header.get("kid")
        candidates = [k for k in client.keys if kid is None or k.key_id == kid]
        for key in candidates:
            if (alg == "ES256") != (key.key_type == "EC"):
                continue
            try:
                claims = jwt.decode(
                    assertion, key.key, algorithms=[alg], audience=audiences,
                    issuer=client.client_id,
                    options={"require": ["iss", "sub", "aud", "exp", "jti"],
                             "verify_exp": False, "verify_iat": False, "verify_nbf": False})
            except jwt.PyJWTError:
                continue
            now = self.tokens.now()
            exp = claims.get("exp")
            if not isinstance(exp, int | float) or exp + self.clock_skew < now:
                return None
            if exp - now > MAX_ASSERTION_LIFETIME + self.clock_skew:
                return None  # long-lived assertions would make jti tracking unbounded
            nbf = claims.get("nbf")
            if isinstance(nbf, int | float) and nbf - self.clock_skew > now:
                return None
            if claims.get("sub") != client.client_id or not isinstance(claims.get("jti"), str):
                return None
            return claims
        return None
