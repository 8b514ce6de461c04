"""Broker settings: one YAML file, validated at load with every problem reported at once.

Relative paths in the file are relative to the file's own folder. Secrets never live in
the YAML: a setting names an environment variable or a file instead. Unknown keys are
errors, so a typo cannot pass silently.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from broker.errors import ConfigError


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SessionSettings(Section):
    lifetime: int = Field(8 * 3600, gt=0, description="Seconds a broker session lasts.")
    login_timeout: int = Field(900, gt=0, description="Seconds a pending login stays valid.")
    cookie_secure: Literal["auto", "always", "never"] = Field(
        "auto", description="auto: Secure unless the issuer is http on localhost.")


class TokenSettings(Section):
    code_lifetime: int = Field(60, gt=0, le=600)
    access_token_lifetime: int = Field(300, gt=0, le=3600)
    id_token_lifetime: int = Field(300, gt=0, le=3600)
    refresh_token_lifetime: int = Field(8 * 3600, gt=0)
    clock_skew: int = Field(60, ge=0, le=300)


class DirectorySettings(Section):
    """Where roles come from (issue 5): the embedded tables, or an LDAP directory (read-only)."""

    backend: Literal["embedded", "ldap"] = "embedded"
    demo: bool = Field(False, description="Seed the demo roles (README) into the embedded one.")
    ldap_url: str | None = Field(None, description="ldaps://host:636 or ldap://host:389")
    start_tls: bool = Field(False, description="StartTLS on an ldap:// URL (required then).")
    bind_dn: str | None = Field(None, description="A read-only bind account.")
    password_env: str = Field("VARCO_LDAP_PASSWORD", description="Env var with its password.")
    base_dn: str | None = Field(None, description="e.g. dc=varco,dc=example")
    tls_ca: Path | None = Field(None, description="CA file that signed the server certificate.")
    timeout: float = Field(3.0, gt=0, le=30, description="Seconds per connect and per search.")


class StoreSettings(Section):
    """Where state lives (issue 7): the embedded SQLite file, or Redis for the hot part."""

    ephemeral: Literal["sqlite", "redis"] = Field(
        "sqlite", description="sessions, codes, tokens, replay caches, counters: "
                              "sqlite (one host) or redis (any number of processes)")
    redis_url_env: str = Field("VARCO_REDIS_URL",
                               description="Env var with redis://[:password@]host:port/db.")
    redis_prefix: str = Field("varco:", min_length=1, max_length=64,
                              description="Prefix of every key, to share one Redis.")
    purge_interval: int = Field(60, ge=1, le=3600,
                                description="Seconds between sweeps of expired entries.")
    durable: Literal["sqlite", "postgres"] = Field(
        "sqlite", description="PIN credentials, directory, outbox, audit trail: sqlite (the "
                              "file in data_dir) or postgres (schema by `varco db upgrade`)")
    postgres_url_env: str = Field(
        "VARCO_DATABASE_URL",
        description="Env var with postgresql://user:password@host:port/dbname.")
    postgres_pool_size: int = Field(10, ge=1, le=200,
                                    description="Connections per broker process.")


class Settings(Section):
    """The whole broker configuration."""

    issuer: str | None = Field(None, description="https issuer; None: http://HOST:PORT (demo).")
    data_dir: Path = Field(Path("var"), description="SQLite file, generated keys, uploads.")
    clients: Path = Field(description="YAML file of registered relying parties.")
    policies_dir: Path
    mappings_dir: Path
    secret_key_env: str = Field(
        "VARCO_SECRET_KEY",
        description="Env var with the key for CSRF and pairwise subjects; "
                    "generated into data_dir when unset.")
    demo_rp: bool = Field(False, description="Serve the demo relying party at /demo-rp.")
    demo_seed: bool = Field(False, description="Create the demo users on first start.")
    languages: tuple[str, ...] = ("it", "en")
    trusted_proxies: tuple[str, ...] = ()
    session: SessionSettings = SessionSettings()
    tokens: TokenSettings = TokenSettings()
    providers: dict[str, dict[str, Any]] = Field(default_factory=dict)
    directory: DirectorySettings = DirectorySettings()
    store: StoreSettings = StoreSettings()
    source: Path | None = Field(None, exclude=True)

    def with_issuer(self, issuer: str) -> Settings:
        return self.model_copy(update={"issuer": issuer.rstrip("/")})

    @property
    def secret_key(self) -> bytes:
        """From the environment, else a random key kept in the data folder (demo)."""
        value = os.environ.get(self.secret_key_env)
        if value:
            return value.encode()
        path = self.data_dir / "secret.key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(os.urandom(32).hex().encode())
        return path.read_bytes().strip()


_PATH_KEYS = ("data_dir", "clients", "policies_dir", "mappings_dir")


def load_settings(path: Path | str) -> Settings:
    """Read and validate a settings file; raise ``ConfigError`` listing every problem."""
    path = Path(path).resolve()
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror}"]) from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError([f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}"]) from exc
    if not isinstance(raw, dict):
        raise ConfigError([f"{path}: expected a mapping at the top level"])
    base = path.parent
    for key in _PATH_KEYS:
        if isinstance(raw.get(key), str):
            raw[key] = str((base / os.path.expandvars(raw[key])).resolve())
    env_issuer = os.environ.get("VARCO_ISSUER")
    if env_issuer:
        raw["issuer"] = env_issuer
    from_env = apply_env_overrides(raw, os.environ)
    try:
        settings = Settings.model_validate({**raw, "source": path})
    except ValidationError as exc:
        raise ConfigError([
            f"{path}: {_where(err['loc'], from_env)}: {err['msg']}"
            for err in exc.errors()
        ]) from exc
    problems = []
    if settings.store.ephemeral == "redis" and not os.environ.get(settings.store.redis_url_env):
        problems.append(f"{path}: store.redis_url_env: environment variable "
                        f"{settings.store.redis_url_env} is not set")
    if settings.store.durable == "postgres" and not os.environ.get(
            settings.store.postgres_url_env):
        problems.append(f"{path}: store.postgres_url_env: environment variable "
                        f"{settings.store.postgres_url_env} is not set")
    if settings.issuer and not settings.issuer.startswith("https://") and not _is_loopback(
            settings.issuer):
        problems.append(f"{path}: issuer: must be https outside 127.0.0.1/localhost")
    for key in ("clients", "policies_dir", "mappings_dir"):
        if not Path(getattr(settings, key)).exists():
            problems.append(f"{path}: {key}: {getattr(settings, key)} does not exist")
    if problems:
        raise ConfigError(problems)
    return settings


ENV_PREFIX = "VARCO__"


def apply_env_overrides(raw: dict[str, Any], environ: Mapping[str, str]) -> dict[str, str]:
    """12-factor overrides: ``VARCO__STORE__EPHEMERAL=redis`` sets ``store.ephemeral``.

    Sections are separated by a double underscore; the value is read as a YAML scalar
    (``true``, ``8080``, ``[a, b]``). Overrides are validated with the rest of the file,
    so a misspelt variable is an error naming it. Returns ``{dotted key: variable}``.
    """
    applied: dict[str, str] = {}
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX) or name == ENV_PREFIX:
            continue
        parts = [p.lower() for p in name[len(ENV_PREFIX):].split("__")]
        try:
            value = yaml.safe_load(environ[name])
        except yaml.YAMLError:
            value = environ[name]
        node = raw
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        node[parts[-1]] = value
        applied[".".join(parts)] = name
    return applied


def _where(loc: tuple[Any, ...], from_env: dict[str, str]) -> str:
    dotted = ".".join(str(p) for p in loc)
    for key, var in from_env.items():
        if dotted == key or dotted.startswith(key + "."):
            return f"{dotted} (from environment variable {var})"
    return dotted


def _is_loopback(url: str) -> bool:
    return url.startswith(("http://127.0.0.1", "http://localhost", "http://[::1]"))
