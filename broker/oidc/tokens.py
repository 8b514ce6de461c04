"""Authorization codes, access tokens and refresh tokens, kept server-side.

All three are opaque random strings; the store keys them by their SHA-256, so a copy
of the store holds nothing a thief could present. Every token belongs to a *grant* (one
authorization code and everything issued from it, including rotated refresh tokens)
and to a broker session (by its public ``sid``). Revoking is a marker on the grant or
on the session, checked on every use, so one write revokes a whole family:

- a code presented twice revokes its grant (RFC 6749 4.1.2, "SHOULD revoke");
- a refresh token presented after it was rotated revokes its grant (RFC 9700 4.14.2);
- logout revokes the session.

Only the operations of ``EphemeralStore`` are used (take is atomic), so two broker
processes can never both redeem one code or one refresh token.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any, Literal

from authlib.oauth2.rfc6749 import ClientMixin

from broker.clock import Clock
from broker.config import TokenSettings
from broker.model import Frozen
from broker.oidc.claims import UserSnapshot
from broker.store.base import EphemeralStore

NS_CODE = "oidc:code"
NS_CODE_USED = "oidc:code-used"
NS_ACCESS = "oidc:at"
NS_REFRESH = "oidc:rt"
NS_REFRESH_USED = "oidc:rt-used"
NS_REVOKED_GRANT = "oidc:revoked-grant"
NS_REVOKED_SID = "oidc:revoked-sid"


class Grant(Frozen):
    """What one authorization is about; copied into every token issued from it."""

    grant_id: str
    client_id: str
    scopes: tuple[str, ...]
    sid: str  # public session id (never the cookie value)
    nonce: str | None = None
    claims: dict[str, Any] | None = None
    user: UserSnapshot
    created_at: int
    # The family's hard end: no refresh token of this grant outlives it.
    expires_at: int


class CodeRecord(Frozen):
    grant: Grant
    redirect_uri: str
    code_challenge: str
    code_challenge_method: Literal["S256"] = "S256"

    # Authlib AuthorizationCodeMixin.
    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return " ".join(self.grant.scopes)


class TokenRecord(Frozen):
    kind: Literal["access_token", "refresh_token"]
    grant: Grant
    scopes: tuple[str, ...]
    issued_at: int
    expires_at: int

    # Authlib TokenMixin / introspection helpers.
    def check_client(self, client: ClientMixin) -> bool:
        return self.grant.client_id == client.get_client_id()

    def get_scope(self) -> str:
        return " ".join(self.scopes)

    # ``TokenStore.lookup`` returns only live, unrevoked tokens, so by the time Authlib
    # asks, the answer is always no.
    def is_expired(self) -> bool:
        return False

    def is_revoked(self) -> bool:
        return False


def _h(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


class TokenStore:
    def __init__(self, ephemeral: EphemeralStore, clock: Clock, settings: TokenSettings,
                 session_lifetime: int):
        self.eph = ephemeral
        self.clock = clock
        self.settings = settings
        # Markers must outlive anything they could revoke.
        self.marker_ttl = max(settings.refresh_token_lifetime, session_lifetime,
                              settings.access_token_lifetime) + settings.clock_skew

    def now(self) -> int:
        return int(self.clock.now().timestamp())

    # --- codes ----------------------------------------------------------------------
    def issue_code(self, record: CodeRecord) -> str:
        """Store a code, and at once the marker that names its grant.

        The marker is written before anyone can present the code, so a replay racing the
        first redemption still finds it and revokes the grant (no window between the
        atomic ``take`` and a later marker write).
        """
        code = new_token()
        key = _h(code)
        self.eph.put_many([
            (NS_CODE_USED, key, record.grant.grant_id, self.marker_ttl),
            (NS_CODE, key, record.model_dump_json(), self.settings.code_lifetime)])
        return code

    def redeem_code(self, code: str) -> CodeRecord | None:
        """Single use. A second presentation revokes what the first one issued."""
        key = _h(code)
        raw = self.eph.take(NS_CODE, key)
        if raw is None:
            grant_id = self.eph.get(NS_CODE_USED, key)
            if grant_id:
                self.revoke_grant(grant_id)
            return None
        record = CodeRecord.model_validate_json(raw)
        if self.is_revoked(record.grant):
            return None
        return record

    # --- access and refresh tokens ---------------------------------------------------
    def issue(self, kind: Literal["access_token", "refresh_token"], grant: Grant,
              scopes: tuple[str, ...]) -> tuple[str, int]:
        """Store a new token; returns it with its lifetime in seconds."""
        now = self.now()
        if kind == "access_token":
            ttl = self.settings.access_token_lifetime
        else:
            ttl = min(self.settings.refresh_token_lifetime, grant.expires_at - now)
        ttl = max(ttl, 1)
        token = new_token()
        record = TokenRecord(kind=kind, grant=grant, scopes=scopes, issued_at=now,
                             expires_at=now + ttl)
        if kind == "refresh_token":  # the reuse marker is written with the token, never after
            self.eph.put_many([
                (NS_REFRESH_USED, _h(token), grant.grant_id, self.marker_ttl),
                (NS_REFRESH, _h(token), record.model_dump_json(), ttl)])
        else:
            self.eph.put(NS_ACCESS, _h(token), record.model_dump_json(), ttl)
        return token, ttl

    def lookup(self, token: str, hint: str | None = None) -> TokenRecord | None:
        """A live, unrevoked token of either kind (access first unless hinted)."""
        order = [NS_REFRESH, NS_ACCESS] if hint == "refresh_token" else [NS_ACCESS, NS_REFRESH]
        for ns in order:
            raw = self.eph.get(ns, _h(token))
            if raw is not None:
                record = TokenRecord.model_validate_json(raw)
                if record.expires_at <= self.now() or self.is_revoked(record.grant):
                    return None
                return record
        return None

    def access(self, token: str) -> TokenRecord | None:
        raw = self.eph.get(NS_ACCESS, _h(token))
        if raw is None:
            return None
        record = TokenRecord.model_validate_json(raw)
        if record.expires_at <= self.now() or self.is_revoked(record.grant):
            return None
        return record

    def rotate_refresh(self, token: str) -> TokenRecord | None:
        """Consume a refresh token. An already rotated one revokes its whole family."""
        key = _h(token)
        raw = self.eph.take(NS_REFRESH, key)
        if raw is None:
            grant_id = self.eph.get(NS_REFRESH_USED, key)
            if grant_id:
                self.revoke_grant(grant_id)
            return None
        record = TokenRecord.model_validate_json(raw)
        if record.expires_at <= self.now() or self.is_revoked(record.grant):
            return None
        return record

    def delete(self, token: str) -> None:
        self.eph.delete(NS_ACCESS, _h(token))
        self.eph.delete(NS_REFRESH, _h(token))

    # --- revocation ------------------------------------------------------------------
    def revoke_grant(self, grant_id: str) -> None:
        self.eph.put(NS_REVOKED_GRANT, grant_id, "1", self.marker_ttl)

    def revoke_session(self, sid: str) -> None:
        self.eph.put(NS_REVOKED_SID, sid, "1", self.marker_ttl)

    def is_revoked(self, grant: Grant) -> bool:
        marks = self.eph.get_many([(NS_REVOKED_GRANT, grant.grant_id),
                                   (NS_REVOKED_SID, grant.sid)])
        return any(mark is not None for mark in marks)
