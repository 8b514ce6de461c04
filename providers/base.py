"""The provider contract: what a login method implements, and what the login hub offers it.

A provider knows nothing of OIDC. It receives the pending ``AuthRequest`` (what the RP
asked for, already validated) in a ``LoginStep``, talks to its credential source (PIN
store, SAML IdP, TLS certificate) and *returns* what came of it, like Dex's connectors:

- an ``AuthEvent``: someone authenticated; the hub maps, decides, spends the event's
  single-use marks and the session in one commit, and takes the login on;
- a ``Refusal``: an expected "no" (a rejected SAML response, a revoked card, the
  citizen cancelled at the IdP), shown as a readable page; never an exception;
- a ``Response``: a page of the provider's own that continues the login (the PIN form
  again with its error, the choice of a new PIN, the redirect to an IdP).

The hub owns the HTTP side of every login step (``StepRoute``, ``CallbackRoute``): it
reads the form, checks CSRF and that the login belongs to this browser, makes the one
thread hop, and handles a cross-site return (a SAML POST without our cookies). So a
provider never opens a transaction, writes a replay mark, parks a POST or looks up a
sibling component. Every method below that a hub calls runs in a worker thread: it may
block on the stores, the network or a hash.

Capabilities are small optional protocols a provider class implements as it needs:
``Steps`` (form logins), ``Callbacks`` (redirect and POST returns), ``ReturnsTo``,
``Choices`` (sub-choices such as SPID IdPs), ``LeavesOnStart``, ``LogoutCapable``, ``HasButton``,
``HasAdminRoutes``, ``HasDemo``, ``HasBackgroundJobs``. ``supports`` tests them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict
from typing_extensions import TypeIs

from broker.errors import BrokerError, Text
from broker.model import AuthEvent, AuthRequest, BrokerSession

if TYPE_CHECKING:
    from broker.audit import AuditLog
    from broker.clock import Clock
    from broker.policy import PolicyHolder
    from broker.store.base import Database, EphemeralStore


class ProviderConfig(BaseModel):
    """Base of every provider's typed config; unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True


# --- what a provider returns ------------------------------------------------------------
@dataclass(frozen=True)
class Refusal:
    """An expected "no": ``error`` says why to the citizen (its page) and to the log.

    ``cancelled``: the citizen gave up at the credential source; the RP gets
    ``access_denied`` instead of a page.
    """

    error: BrokerError
    cancelled: bool = False


Outcome = AuthEvent | Refusal
StepResult = AuthEvent | Refusal | Response


@dataclass(frozen=True)
class LoginStep:
    """One request of a login in progress, as the hub hands it to a provider.

    ``auth`` is the pending login, already proved to be this browser's; ``form`` the
    posted fields (the query for a GET), a repeated field keeping its last value.
    """

    request: Request
    auth: AuthRequest
    form: Mapping[str, str]

    @property
    def tx(self) -> str:
        return self.auth.tx_id


@dataclass(frozen=True)
class Returned:
    """What a provider made of a return from its credential source.

    ``tx`` names the login it answers (from the provider's own record of what it sent);
    None when it cannot be told, and then ``outcome`` is a ``Refusal``.
    """

    tx: str | None
    outcome: Outcome


@dataclass(frozen=True)
class StepRoute:
    """A login step served at ``/{provider}{path}``: the hub loads the login named by the
    ``tx`` field, checks CSRF on a POST, then calls ``handler`` in a worker thread."""

    path: str
    methods: tuple[str, ...]
    handler: Callable[[LoginStep], StepResult]
    hot: bool = False  # on every login of its kind: on the app's fast lane


@dataclass(frozen=True)
class CallbackRoute:
    """A return from the credential source at ``/{provider}{path}``.

    ``handler(request, fields)`` runs in a worker thread and says which login it answers.
    ``cross_site``: it arrives as a POST from another site, which carries none of our
    SameSite=Lax cookies; the hub then recognises the browser by a return cookie it set
    when the provider started, or re-enters the POST as a GET of ours.
    """

    path: str
    methods: tuple[str, ...]
    handler: Callable[[Request, Mapping[str, str]], Returned]
    cross_site: bool = False
    hot: bool = False


# --- what the hub offers a provider's own pages -----------------------------------------
class Pages(Protocol):
    """Rendering and browser binding for a provider's own pages (no I/O: loop-safe)."""

    def page(self, request: Request, template: str, context: dict[str, Any],
             status: int = 200) -> Response:
        """Render ``template`` in the common layout (language, CSRF token, accessibility)."""

    def csrf_token(self, request: Request) -> str:
        """This browser's CSRF token, for a form a provider writes itself."""

    def verify_csrf(self, request: Request, token: str | None) -> None:
        """Raise ``CsrfError`` unless ``token`` is this browser's CSRF token."""

    def language(self, request: Request) -> str:
        """``it`` or ``en`` for this request."""


class Sessions(Protocol):
    """The browser's broker session, for provider pages that need it (worker thread)."""

    def current(self, request: Request) -> BrokerSession | None:
        """This browser's session, if any (the telephone PIN page needs a strong login)."""

    def end(self, request: Request, response: Response, *, reason: str) -> None:
        """End this browser's session for every RP (the citizen logged out at the IdP)."""


class AdminGuard(Protocol):
    """Client authentication for a provider's back-office API (``HasAdminRoutes``)."""

    def require(self, scope: str) -> Callable[..., Awaitable[Any]]:
        """A FastAPI dependency returning the authenticated admin client (``AdminCaller``)
        that holds ``scope``; 401/403 otherwise."""


@dataclass(frozen=True)
class ProviderServices:
    """What a provider factory may use, built before any provider."""

    clock: Clock
    db: Database
    ephemeral: EphemeralStore
    audit: AuditLog
    pages: Pages
    sessions: Sessions
    policy: PolicyHolder  # the live policy (a provider's own pages may ask it)
    admin: AdminGuard
    base_url: str
    data_dir: Path
    config_dir: Path
    # The providers built before this one: those its type ``requires``, for its factory.
    peers: Mapping[str, Provider] = field(default_factory=dict)


# --- the provider and its capabilities --------------------------------------------------
@runtime_checkable
class Provider(Protocol):
    """A login method. ``name`` is its type's name; routes live under ``/{name}``."""

    @property
    def name(self) -> str:
        """Its type's name (``providers.types.ProviderType.name``)."""

    @property
    def label(self) -> Text:
        """What the chooser's button says."""

    @property
    def router(self) -> APIRouter:
        """The provider's own routes (metadata, citizen pages), mounted under ``/{name}``."""

    def start(self, step: LoginStep, hint: str | None) -> Response | Refusal:
        """Begin a login (a form, a redirect to an IdP, a card challenge), or say why it
        cannot (no trusted IdP); ``hint`` is what followed ``name:`` in ``idp_hint``,
        already checked against ``Choices``."""


@runtime_checkable
class Steps(Protocol):
    """Optional: login steps served by the hub for this provider (a form login)."""

    def steps(self) -> Sequence[StepRoute]: ...


@runtime_checkable
class Callbacks(Protocol):
    """Optional: returns from the credential source (SAML ACS, card endpoint, wallet)."""

    def callbacks(self) -> Sequence[CallbackRoute]: ...


@runtime_checkable
class ReturnsTo(Protocol):
    """Optional: the credential source answers, cross-site, at another provider's callback
    (eIDAS through FICEP answers at the SPID ACS): the return cookie goes there too."""

    def return_paths(self) -> list[str]:
        """Absolute paths (``/spid/acs``)."""


@runtime_checkable
class Choices(Protocol):
    """Optional: sub-choices the login page lists under this provider (SPID IdPs)."""

    def choices(self) -> list[dict[str, str]]:
        """``{"id", "label"}`` for each sub-choice (``idp_hint=name:<id>``)."""

    def has_choice(self, choice_id: str) -> bool:
        """``choice_id in {c["id"] for c in choices()}``, without building the list."""


@runtime_checkable
class LeavesOnStart(Protocol):
    """Optional: ``start`` with this hint goes straight to another site (a SAML IdP), never
    a page of ours, so the hub may start it from ``/authorize`` itself (one redirect
    less). Providers that show a page first (PIN form, IdP list) answer false."""

    def leaves_on_start(self, hint: str | None) -> bool: ...


@runtime_checkable
class LogoutCapable(Protocol):
    """Optional: must be told when the broker session ends (SAML single logout)."""

    async def logout(self, request: Request, event: AuthEvent, return_to: str
                     ) -> Response | None:
        """Start provider logout; None when nothing needs doing."""


@runtime_checkable
class HasButton(Protocol):
    """Optional: the chooser draws this provider with its own template (brand rules)."""

    chooser_partial: str


@runtime_checkable
class HasAdminRoutes(Protocol):
    """Optional: a back-office JSON API, mounted at the app's root (``/admin/<name>``)."""

    def admin_router(self) -> APIRouter: ...


@runtime_checkable
class HasDemo(Protocol):
    """Optional: demo parts served by the broker itself (a test IdP): (prefix, router)."""

    def demo_routes(self) -> list[tuple[str, APIRouter]]: ...


class BackgroundJob(Protocol):
    def start(self) -> None: ...

    def stop(self) -> None: ...


@runtime_checkable
class HasBackgroundJobs(Protocol):
    """Optional: jobs that run while the app runs (the PIN's notification outbox)."""

    def background_jobs(self) -> list[BackgroundJob]: ...


_P = TypeVar("_P")
_SUPPORTS: dict[tuple[type, type], bool] = {}


def supports(provider: object, capability: type[_P]) -> TypeIs[_P]:
    """``isinstance(provider, capability)``, remembered per provider class.

    A runtime protocol check lists and looks up the protocol's members on every call
    (~15 us), and the login path asks on every login; a class's methods decide its
    capabilities, so the answer is the class's. ``TypeIs``: the checker then knows the
    provider has both its own type and the capability.
    """
    key = (type(provider), capability)
    known = _SUPPORTS.get(key)
    if known is None:
        known = _SUPPORTS[key] = isinstance(provider, capability)
    return known
