"""The Provider contract: what every login method implements, and the registry of types.

A provider knows nothing of OIDC. It receives an ``AuthRequest`` (what the RP asked
for, already validated), talks to its credential source (PIN store, SAML IdP, TLS
certificate), and hands one ``AuthEvent`` back to the broker through the ``LoginHub``.
The hub does everything after that: mapping, policy, session, returning to the RP.

Adding a provider touches only ``providers/`` (a module and one ``register`` call
here) plus one mapping file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict

from broker.errors import BrokerError, Text
from broker.http.fastlane import HotRoute
from broker.model import AuthEvent, AuthRequest, BrokerSession, ReturnBinding

if TYPE_CHECKING:
    from broker.clock import Clock
    from broker.store.base import Database, EphemeralStore


class ProviderConfig(BaseModel):
    """Base of every provider's typed config; unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True


class LoginHub(Protocol):
    """What the broker offers a provider during a login. Implemented by ``broker.login.hub``."""

    def pending(self, request: Request, tx_id: str) -> AuthRequest:
        """The login in progress for this browser; raises ``LoginExpired`` if none."""

    async def complete(self, request: Request, tx_id: str, event: AuthEvent) -> Response:
        """The provider authenticated someone: map, decide, start the session, go on."""

    def complete_here(self, request: Request, tx_id: str, event: AuthEvent) -> Response:
        """``complete`` from a worker thread (store and directory calls block)."""

    def decide(self, request: Request, tx_id: str, event: AuthEvent) -> Any:
        """``complete_here``'s first half, reads only: the judged login, or the error page
        (a ``Response``). For a provider that writes with the login (a replay mark)."""

    def commit(self, request: Request, decided: Any) -> Response:
        """``complete_here``'s second half, the writes: call it inside ``Database.batch``."""

    def fail(self, request: Request, error: BrokerError, tx_id: str | None = None) -> Response:
        """Render our own readable error page (4xx/5xx) and log the detail with its error id."""

    def cancel(self, request: Request, tx_id: str) -> Response:
        """The citizen gave up (or the IdP says so): back to the RP with ``access_denied``."""

    def render(self, request: Request, template: str, context: dict[str, Any],
               status: int = 200) -> Response:
        """Render a page in the common layout, with language, CSRF token and accessibility."""

    def verify_csrf(self, request: Request, token: str | None) -> None:
        """Raise ``CsrfError`` unless ``token`` is this browser's CSRF token."""

    def session(self, request: Request) -> BrokerSession | None:
        """This browser's broker session, if any (e.g. the telephone-PIN page needs one)."""

    def end_session(self, request: Request, response: Response) -> None:
        """The citizen logged out at the provider: end the session for every RP."""

    def return_binding(self, request: Request, auth: AuthRequest) -> ReturnBinding:
        """Keep this with a request sent to another site whose answer is a POST back."""

    def expect_cross_site_return(self, request: Request, response: Response, path: str,
                                 ttl: int) -> None:
        """Set the cookie that lets the POST back to ``path`` name this browser."""

    def cross_site_claim(self, request: Request) -> str | None:
        """A POST without our SameSite=Lax cookies: the browser the return cookie names."""

    def adopt(self, request: Request, claim: str, binding: ReturnBinding) -> None:
        """Go on as the browser in ``binding`` if ``claim`` is it; else ``LoginExpired``."""

    def park_cross_site_post(self, request: Request, fields: dict[str, str]) -> Response | None:
        """A POST from another site lacks our SameSite cookies: re-enter as a GET."""

    def unpark(self, key: str) -> dict[str, str] | None:
        """The fields parked by ``park_cross_site_post``, once."""


@dataclass(frozen=True)
class ProviderServices:
    """What a provider factory may use. The hub is late-bound because routes are built first."""

    clock: Clock
    db: Database
    ephemeral: EphemeralStore
    hub: Callable[[], LoginHub]
    base_url: Callable[[], str]
    data_dir: Any  # pathlib.Path
    config_dir: Any  # pathlib.Path
    audit: Any  # broker.audit.AuditLog: the one hash-chained trail (also counted in /metrics)


_SUPPORTS: dict[tuple[type, type], bool] = {}


def supports(provider: object, capability: type) -> bool:
    """``isinstance(provider, capability)`` for the optional protocols below, remembered
    per provider class: a runtime protocol check lists and looks up the protocol's
    members on every call (~15 us), and the login path asks on every login. Providers
    get their capabilities from their class's methods, so the class decides."""
    key = (type(provider), capability)
    known = _SUPPORTS.get(key)
    if known is None:
        known = _SUPPORTS[key] = isinstance(provider, capability)
    return known


@runtime_checkable
class Provider(Protocol):
    """A login method.

    ``name`` is the value of ``amr``-like provider ids (``pin``, ``spid``, ``cie``, ``cns``)
    used by ``idp_hint``, mapping files and policies. ``start`` answers the browser that
    chose this provider (a form, a redirect to an IdP, a TLS challenge). Provider routes
    (form posts, ACS, metadata) live on ``router``, mounted under ``/{name}``; they end
    by calling ``hub.complete(...)`` with the ``AuthEvent``.
    """

    name: str
    label: Text

    @property
    def router(self) -> APIRouter: ...

    async def start(self, request: Request, auth: AuthRequest, hint: str | None) -> Response:
        """Begin a login for ``auth``; ``hint`` is what followed ``name:`` in ``idp_hint``."""

    def choices(self) -> list[dict[str, str]]:
        """Sub-choices the login page lists under this provider (SPID IdPs); may be empty."""


@runtime_checkable
class ChoiceLookup(Protocol):
    """Optional for a provider with ``choices``: check one without building the list.

    The hub checks an ``idp_hint`` sub-choice (``spid:<entityID>``) on every hinted
    ``/authorize``; ``has_choice(h)`` must equal ``h in {c["id"] for c in choices()}``.
    """

    def has_choice(self, choice_id: str) -> bool:
        """Whether ``choice_id`` is one of ``choices()`` now."""


@runtime_checkable
class HasHotRoutes(Protocol):
    """Optional: endpoints every login crosses (a SAML ACS), for the app's fast lane.

    Paths are relative to the provider's prefix (``/acs`` is served at ``/spid/acs``),
    exact, and not in ``router`` as well. See ``broker.http.fastlane``.
    """

    def hot_routes(self) -> list[HotRoute]:
        """The provider's hot endpoints, each taking the bare ``Request``."""


@runtime_checkable
class LeavesOnStart(Protocol):
    """Optional: a provider whose ``start`` may send the browser straight to another site.

    When ``leaves_on_start(hint)`` is true, ``start`` answers with a redirect or an
    auto-submitting form to the credential source (a SAML IdP), never a page of ours, so
    the hub starts it from ``/authorize`` itself: one redirect less. Providers that show
    a page (PIN form, IdP list) must answer false, so that page keeps its own URL.
    """

    def leaves_on_start(self, hint: str | None) -> bool:
        """Whether ``start`` with this (already checked) hint goes off-site at once."""

    def start_here(self, request: Request, auth: AuthRequest, hint: str | None) -> Response:
        """``start`` from a worker thread (``/authorize`` is already in one)."""


@runtime_checkable
class LogoutCapable(Protocol):
    """A provider that must be told when the broker session ends (SAML SLO)."""

    async def logout(self, request: Request, event: AuthEvent, return_to: str) -> Response | None:
        """Start provider logout; None when nothing needs doing."""


@dataclass(frozen=True)
class ProviderType:
    """A registry entry: the typed config class and the factory that builds the provider."""

    config: type[ProviderConfig]
    factory: Callable[[Any, ProviderServices], Provider]


_REGISTRY: dict[str, ProviderType] = {}


def register(name: str, config: type[ProviderConfig],
             factory: Callable[[Any, ProviderServices], Provider]) -> None:
    _REGISTRY[name] = ProviderType(config, factory)


def provider_types() -> dict[str, ProviderType]:
    """The registered provider types, importing the built-in ones on first use."""
    _load_builtin()
    return dict(_REGISTRY)


def _load_builtin() -> None:
    import importlib

    for module in ("providers.pin", "providers.spid", "providers.cie", "providers.cns"):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:  # a real import error inside the provider
                raise
