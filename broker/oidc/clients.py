"""The registry of relying parties, read from an admin-edited YAML file.

Every problem in the file is reported at once, each with the file, the client's
position (and line) and the key, and the broker refuses to start on any of them.
Unknown keys are errors, so a typo cannot silently weaken a client.

A client's secret never sits in the YAML in clear: either ``secret_hash``
(``sha256:<hex>``, only for high-entropy random secrets, compared in constant time) or
``secret_env`` (the name of an environment variable). ``private_key_jwt`` clients give
their public keys inline (``jwks``) or in a file (``jwks_file``, relative to the YAML).

Redirect and post-logout URIs may use the placeholder ``{issuer}``, replaced by the
broker's issuer at load (the demo's port varies from run to run).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml
from authlib.oauth2.rfc6749 import ClientMixin
from jwt import PyJWK, PyJWKError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from broker.errors import ConfigError
from broker.model import ClientInfo, Privilege

AuthMethod = Literal["client_secret_basic", "client_secret_post", "private_key_jwt"]

# Scopes a client may be registered for (see broker.oidc.claims for what each yields).
KNOWN_SCOPES = frozenset({
    "openid", "profile", "email", "fiscal_number", "abilitazioni", "offline_access"})

# The broker's own admin APIs; each provider type adds those of its back office.
ADMIN_SCOPES = frozenset({"admin:directory", "admin:audit", "admin:sessions"})


def provider_option_problems(options: dict[str, dict[str, str]]) -> list[str]:
    """Each provider's options checked by its type's own model (``client_options``)."""
    from pydantic import ValidationError

    from providers.types import provider_types

    types, problems = provider_types(), []
    for name, given in options.items():
        kind = types.get(name)
        if kind is None or kind.client_options is None:
            problems.append(f"provider_options.{name}: no such provider takes options")
            continue
        try:
            kind.client_options.model_validate(given)
        except ValidationError as exc:
            problems += [f"provider_options.{name}.{'.'.join(map(str, e['loc']))}: {e['msg']}"
                         for e in exc.errors()]
    return problems


def admin_scopes() -> frozenset[str]:
    """Every admin scope a client may hold: the broker's and the provider types'."""
    from providers.types import provider_types

    return ADMIN_SCOPES.union(*(kind.admin_scopes for kind in provider_types().values()))
_SHA256 = re.compile(r"^sha256:[0-9a-f]{64}$")


class ClientConfig(BaseModel):
    """One relying party as written in the registry file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    client_id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")
    name: str = Field(min_length=1)
    secret_hash: str | None = Field(None, description="sha256:<hex> of a random secret")
    secret_env: str | None = Field(None, description="environment variable holding the secret")
    jwks: dict[str, Any] | None = Field(None, description="public keys for private_key_jwt")
    jwks_file: Path | None = None
    token_endpoint_auth_method: AuthMethod = "client_secret_basic"  # noqa: S105
    redirect_uris: tuple[str, ...] = ()
    post_logout_redirect_uris: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ("openid",)
    backchannel_logout_uri: str | None = Field(
        None, description="OIDC Back-Channel Logout 1.0: where the broker POSTs a signed "
                          "logout_token when a session this RP joined ends")
    backchannel_logout_session_required: bool = False  # the token always carries sid
    frontchannel_logout_uri: str | None = Field(
        None, description="OIDC Front-Channel Logout 1.0: loaded in an iframe on the "
                          "broker's signed-out page (for RPs without a back channel)")
    frontchannel_logout_session_required: bool = False  # iss and sid are always sent
    id_token_signed_response_alg: Literal["ES256", "RS256"] = "ES256"  # noqa: S105
    required_privilege: Privilege | None = None
    subject_type: Literal["pairwise", "public"] = "pairwise"
    sector_identifier: str | None = None
    tags: tuple[str, ...] = ()
    accept_filed_with_ordinario: bool = Field(
        False, description="An RP that needs dispositivo may still let an ordinario PIN "
                           "holder with a pending conversion FILE an application (held until "
                           "the conversion): the login passes, privilege stays ordinario and "
                           "the token carries application_filing")
    provider_options: dict[str, dict[str, str]] = Field(
        default_factory=dict, description="What this RP asks of a login method, by provider "
                                          "(e.g. spid: {purpose: PX}, a professional SPID "
                                          "identity); the provider validates its own")
    requires_fiscal_code: bool = Field(
        False, description="Refuse a login that carries no codice fiscale (an eID of "
                           "another EU state not yet linked to one): the citizen is told why")
    admin_scopes: tuple[str, ...] = Field(
        (), description="admin API scopes this client may call (e.g. admin:directory, "
                        "admin:pin, contact-center); such clients call with client auth")

    @model_validator(mode="after")
    def _coherent(self) -> ClientConfig:
        problems = []
        secret_kinds = [k for k in ("secret_hash", "secret_env") if getattr(self, k)]
        key_kinds = [k for k in ("jwks", "jwks_file") if getattr(self, k) is not None]
        if self.token_endpoint_auth_method == "private_key_jwt":  # noqa: S105
            if len(key_kinds) != 1 or secret_kinds:
                problems.append("private_key_jwt needs exactly one of jwks, jwks_file "
                                "and no secret")
        elif len(secret_kinds) != 1 or key_kinds:
            problems.append(f"{self.token_endpoint_auth_method} needs exactly one of "
                            "secret_hash, secret_env and no jwks")
        if self.secret_hash is not None and not _SHA256.match(self.secret_hash):
            problems.append("secret_hash must look like sha256:<64 lowercase hex digits>")
        if "openid" not in self.scopes:
            problems.append("scopes must include openid")
        if not self.redirect_uris and not self.admin_scopes:
            problems.append("redirect_uris: at least one is needed (only admin clients "
                            "may have none)")
        bad_admin = sorted(set(self.admin_scopes) - admin_scopes())
        if bad_admin:
            problems.append(f"unknown admin_scopes {bad_admin}; known: {sorted(admin_scopes())}")
        problems += provider_option_problems(self.provider_options)
        unknown = sorted(set(self.scopes) - KNOWN_SCOPES)
        if unknown:
            problems.append(f"unknown scopes {unknown}; known: {sorted(KNOWN_SCOPES)}")
        for key in ("redirect_uris", "post_logout_redirect_uris"):
            for uri in getattr(self, key):
                why = _uri_problem(uri)
                if why:
                    problems.append(f"{key}: {uri!r}: {why}")
        for key in ("backchannel_logout_uri", "frontchannel_logout_uri"):
            uri = getattr(self, key)
            why = _uri_problem(uri) if uri is not None else None
            if why:
                problems.append(f"{key}: {uri!r}: {why}")
        if problems:
            raise ValueError("; ".join(problems))
        return self


def _uri_problem(uri: str) -> str | None:
    probe = uri.replace("{issuer}", "https://issuer.invalid")
    parts = urlsplit(probe)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return "must be an absolute http(s) URI"
    if parts.fragment or "#" in probe:
        return "must not contain a fragment"
    if parts.scheme == "http" and parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        return "http is allowed only on 127.0.0.1/localhost"
    return None


class RegistryFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    clients: list[dict[str, Any]]


class Client(ClientMixin):
    """A registered client ready for use: placeholders resolved, secret and keys loaded.

    Implements the methods Authlib's ``ClientMixin`` asks for. Secrets are kept as
    digests and compared in constant time.
    """

    def __init__(self, config: ClientConfig, *, issuer: str, secret: bytes | None,
                 keys: tuple[PyJWK, ...]):
        self.config = config
        self.client_id = config.client_id
        self.redirect_uris = tuple(u.replace("{issuer}", issuer) for u in config.redirect_uris)
        self.post_logout_redirect_uris = tuple(
            u.replace("{issuer}", issuer) for u in config.post_logout_redirect_uris)
        self.backchannel_logout_uri = (config.backchannel_logout_uri or "").replace(
            "{issuer}", issuer) or None
        self.frontchannel_logout_uri = (config.frontchannel_logout_uri or "").replace(
            "{issuer}", issuer) or None
        self._secret_digest = secret
        self.keys = keys

    def __repr__(self) -> str:
        return f"Client({self.client_id!r})"

    @property
    def info(self) -> ClientInfo:
        return ClientInfo(client_id=self.client_id, name=self.config.name,
                          required_privilege=self.config.required_privilege,
                          tags=self.config.tags,
                          requires_fiscal_code=self.config.requires_fiscal_code)

    # --- Authlib ClientMixin -------------------------------------------------------
    def get_client_id(self) -> str:
        return self.client_id

    # Authlib refuses a request without redirect_uri when this is None; its stub says str.
    def get_default_redirect_uri(self) -> str | None:  # type: ignore[override]
        return None  # OIDC: redirect_uri is always required

    def get_allowed_scope(self, scope: Collection[str] | str) -> str:
        asked = (scope or "").split() if isinstance(scope, str) else scope
        return " ".join(s for s in asked if s in self.config.scopes)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris  # exact string match only

    def check_client_secret(self, client_secret: str) -> bool:
        if self._secret_digest is None or not client_secret:
            return False
        presented = hashlib.sha256(client_secret.encode("utf-8")).digest()
        return hmac.compare_digest(presented, self._secret_digest)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == self.config.token_endpoint_auth_method

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        if grant_type == "authorization_code":
            return True
        return grant_type == "refresh_token" and "offline_access" in self.config.scopes


class ClientRegistry:
    """All clients by id. Built once at start by ``load_clients``."""

    def __init__(self, clients: list[Client]):
        self._clients = {c.client_id: c for c in clients}

    def get(self, client_id: str | None) -> Client | None:
        if not client_id:
            return None
        return self._clients.get(client_id)

    def __iter__(self) -> Iterator[Client]:
        return iter(self._clients.values())

    def __len__(self) -> int:
        return len(self._clients)


def load_clients(path: Path | str, issuer: str) -> ClientRegistry:
    """Read, validate and resolve the registry; raise ``ConfigError`` listing every problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        raw = yaml.safe_load(text) or {}
        root = yaml.compose(text)
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror}"]) from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError([f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}"]) from exc
    try:
        registry = RegistryFile.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError([f"{path}: {_loc(err['loc'])}: {err['msg']}"
                           for err in exc.errors()]) from exc
    lines = _item_lines(root)
    problems: list[str] = []
    clients: list[Client] = []
    seen: set[str] = set()
    for i, item in enumerate(registry.clients):
        where = f"{path}:{lines[i]}: clients[{i}]" if i < len(lines) else f"{path}: clients[{i}]"
        try:
            config = ClientConfig.model_validate(item)
        except ValidationError as exc:
            problems += [f"{where}.{_loc(err['loc'])}: {err['msg']}".replace(".: ", ": ")
                         for err in exc.errors()]
            continue
        if config.client_id in seen:
            problems.append(f"{where}.client_id: duplicate {config.client_id!r}")
        seen.add(config.client_id)
        secret: bytes | None = None
        keys: tuple[PyJWK, ...] = ()
        if config.secret_hash:
            secret = bytes.fromhex(config.secret_hash.removeprefix("sha256:"))
        elif config.secret_env:
            value = os.environ.get(config.secret_env)
            if not value:
                problems.append(f"{where}.secret_env: environment variable "
                                f"{config.secret_env} is not set")
                continue
            secret = hashlib.sha256(value.encode("utf-8")).digest()
        else:
            try:
                keys = _load_keys(config, path.parent)
            except (OSError, ValueError, PyJWKError) as exc:
                problems.append(f"{where}.{'jwks_file' if config.jwks_file else 'jwks'}: "
                                f"{exc}")
                continue
        clients.append(Client(config, issuer=issuer, secret=secret, keys=keys))
    if problems:
        raise ConfigError(problems)
    return ClientRegistry(clients)


def _load_keys(config: ClientConfig, base: Path) -> tuple[PyJWK, ...]:
    if config.jwks_file is not None:
        data = json.loads((base / config.jwks_file).read_text(encoding="utf-8"))
    else:
        data = config.jwks
    members = (data or {}).get("keys")
    if not isinstance(members, list) or not members:
        raise ValueError("expected a JWK Set with at least one key")
    keys = []
    for jwk in members:
        if not isinstance(jwk, dict) or "d" in jwk or "p" in jwk:
            raise ValueError("each key must be a public JWK (no private members)")
        if jwk.get("kty") not in ("EC", "RSA"):
            raise ValueError("only EC and RSA keys are accepted")
        keys.append(PyJWK(jwk))
    return tuple(keys)


def _loc(loc: tuple[Any, ...]) -> str:
    return ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in loc).replace(".[", "[")


def _item_lines(root: yaml.Node | None) -> list[int]:
    """1-based line of each item of the top-level ``clients`` list, for error messages."""
    if not isinstance(root, yaml.MappingNode):
        return []
    for key, value in root.value:
        if getattr(key, "value", None) == "clients" and isinstance(value, yaml.SequenceNode):
            return [item.start_mark.line + 1 for item in value.value]
    return []
