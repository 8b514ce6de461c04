"""The PIN login: the form, its checks, and the ``AuthEvent`` it returns to the hub.

Order of the checks on POST /pin/login, and why:

1. CSRF, then the pending login (the hub checks both before the step is called):
   nothing else is looked at for a forged or stale form.
2. The codice fiscale's shape and check character: a typo gets a clear message and is not
   counted (it cannot be a guess at anyone's PIN).
3. One attempt is counted *before* the PIN is checked (``PinStore.record_failure``), and
   undone on success: parallel guesses cannot go past the limit. While locked, the PIN is
   not even checked, for a real codice fiscale or an unknown one alike.
4. One argon2id verification, against the stored hash or a dummy: unknown codice fiscale
   and wrong PIN cost the same and get the same page.
5. Only after the right PIN: expiry (renewal page), then the initial 16-character PIN
   (choose the 8-character one), then the ``AuthEvent``.

The login steps run in the worker thread the hub hops to, once per request (SQLite and
argon2id block): each returns a page of ours, an ``AuthEvent`` or a ``Refusal``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request, Response

from broker.errors import AuthenticationFailed, BrokerError, InvalidFiscalCode, LoginExpired, Text
from broker.fiscal_code import mask, normalize_person
from broker.model import AuthEvent
from providers.base import (
    BackgroundJob,
    LoginStep,
    Pages,
    ProviderServices,
    Refusal,
    StepResult,
    StepRoute,
)
from providers.pin.acr import ACR_PIN
from providers.pin.change import (
    PendingChange,
    begin_change,
    check_new_pin,
    consume_change,
    load_change,
)
from providers.pin.config import PinConfig
from providers.pin.hashing import PinHasher
from providers.pin.ratelimit import RateLimiter
from providers.pin.store import Lockout, PinAccount, PinKind, PinStateError, PinStore

if TYPE_CHECKING:
    from broker.outbox import OutboxWorker
    from providers.pin.lifecycle import PinLifecycle

log = logging.getLogger("varco.providers.pin")

ROME = ZoneInfo("Europe/Rome")
_SPACES = re.compile(r"\s+")

MISSING_PIN = Text("Inserisci il PIN.", "Enter your PIN.")
LOCKED = Text(
    "Troppi tentativi errati: l'accesso con questo codice fiscale è bloccato fino alle "
    "{until} (ora italiana). Riprova dopo quell'ora.",
    "Too many wrong attempts: sign-in with this codice fiscale is locked until {until} "
    "(Italian time). Try again after that time.")
JUST_LOCKED = Text(
    "Codice fiscale o PIN non corretti. Dopo {n} tentativi errati l'accesso con questo "
    "codice fiscale è bloccato fino alle {until} (ora italiana).",
    "Wrong codice fiscale or PIN. After {n} wrong attempts sign-in with this codice fiscale "
    "is locked until {until} (Italian time).")
CHANGE_EXPIRED = Text(
    "Il tempo per scegliere il nuovo PIN è scaduto. Accedi di nuovo con il PIN iniziale.",
    "The time to choose the new PIN has run out. Sign in again with the initial PIN.")


class Result(StrEnum):
    OK = "ok"
    WRONG = "wrong"
    LOCKED = "locked"
    EXPIRED = "expired"
    INITIAL = "initial"


@dataclass(frozen=True)
class Outcome:
    """What checking one codice fiscale + PIN came to (computed in the thread pool)."""

    result: Result
    lockout: Lockout
    account: PinAccount | None = None


def until_text(until: datetime) -> str:
    """HH:MM in Italian time, rounded *up* so that at that minute the lock is over."""
    local = until.astimezone(ROME)
    if local.second or local.microsecond:
        local = local.replace(second=0, microsecond=0) + timedelta(minutes=1)
    return local.strftime("%H:%M")


def _fmt(text: Text, **values: object) -> Text:
    return Text(text.it.format(**values), text.en.format(**values))


def _field(form: Any, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


class PinProvider:
    """The ``pin`` provider: the institute's own PIN, checked against ``PinStore``.

    Capabilities (``providers.base``): ``Steps`` (the form, its POST, the new PIN),
    ``HasAdminRoutes`` (the back office), ``HasBackgroundJobs`` (the outbox).
    """

    name = "pin"
    label = Text("PIN dell'Istituto (residenti all'estero)",
                 "Institute PIN (residents abroad)")

    def __init__(self, config: PinConfig, services: ProviderServices, store: PinStore,
                 hasher: PinHasher, lifecycle: PinLifecycle | None = None,
                 worker: OutboxWorker | None = None):
        self.config = config
        self.services = services
        self.store = store
        self.hasher = hasher
        self.lifecycle = lifecycle
        self.worker = worker
        self.validity = timedelta(days=config.validity_days)
        self.limiter = RateLimiter(services.ephemeral, config.rate_limit_per_fiscal_code,
                                   config.rate_limit_per_address,
                                   config.rate_limit_window_seconds)
        self.pages: Pages = services.pages
        self._router = APIRouter()
        if lifecycle is not None:
            from providers.pin.citizen import CitizenPages
            from providers.pin.conversion import ConversionPages
            from providers.pin.recovery import RecoveryPages
            from providers.pin.telephone import TelephonePages

            for pages in (CitizenPages(self), RecoveryPages(self), ConversionPages(self),
                          TelephonePages(self)):
                pages.register(self._router)

    @property
    def router(self) -> APIRouter:
        return self._router

    @property
    def life(self) -> PinLifecycle:
        """The lifecycle, for the citizen pages (registered only when there is one)."""
        if self.lifecycle is None:
            raise RuntimeError("PIN citizen pages without a lifecycle")
        return self.lifecycle

    def admin_router(self) -> APIRouter:
        """``HasAdminRoutes``: the back office and the contact center, a JSON API under
        ``/admin/pin`` (none without the lifecycle)."""
        if self.lifecycle is None:
            return APIRouter()
        from providers.pin.admin import admin_router

        return admin_router(self)

    def background_jobs(self) -> list[BackgroundJob]:
        """``HasBackgroundJobs``: the outbox worker runs while the app runs."""
        return [self.worker] if self.worker is not None else []

    def steps(self) -> list[StepRoute]:
        """``Steps``: the form's POST is on every PIN login, so on the fast lane."""
        return [StepRoute("/login", ("GET",), self.form_again),
                StepRoute("/login", ("POST",), self.login, hot=True),
                StepRoute("/new-pin", ("POST",), self.change),
                StepRoute("/cancel", ("POST",), self.cancel)]

    def citizen_links(self, request: Request) -> list[tuple[str, Text]]:
        """The PIN services a citizen page links to (the layout's "other PIN services")."""
        root = request.scope.get("root_path", "")
        return [(f"{root}/{self.name}/{path}", label) for path, label in (
            ("request", Text("Richiedi il PIN", "Request a PIN")),
            ("activate", Text("Attiva il PIN", "Activate your PIN")),
            ("recovery", Text("Hai dimenticato il PIN? Ripristino", "Forgot your PIN? Recovery")),
            ("duplicate", Text("Lettera non ricevuta", "Letter not received")),
            ("revoke", Text("Revoca un PIN smarrito", "Revoke a lost PIN")),
            ("conversion", Text("Converti il PIN in dispositivo",
                                "Convert your PIN to dispositivo")),
            ("telephone", Text("PIN telefonico", "Telephone PIN")),
        )]

    def count_attempt(self, cf: str) -> Text | None:
        """Count one PIN-like attempt (activation, conversion) against the spine's lockout.

        Returns the message to show when the login is locked; None to go on. The caller
        calls ``store.record_success`` when the attempt turns out right.
        """
        lock = self.store.record_failure(cf, self.services.clock.now())
        if lock.refused and lock.locked_until:
            return _fmt(LOCKED, until=until_text(lock.locked_until))
        return None

    # -- pages -------------------------------------------------------------------------

    def start(self, step: LoginStep, hint: str | None) -> Response:
        """The PIN form; a valid codice fiscale in ``login_hint`` is filled in."""
        prefill = ""
        if step.auth.login_hint:
            try:
                prefill = normalize_person(step.auth.login_hint)
            except InvalidFiscalCode:
                prefill = ""
        return self._form(step.request, step.tx, prefill)

    def form_again(self, step: LoginStep) -> StepResult:
        """GET /pin/login?tx=...: the form again (links from the renewal and error pages)."""
        return self.start(step, None)

    def cancel(self, step: LoginStep) -> StepResult:
        """"Return to the service": the citizen gives up; the RP gets ``access_denied``."""
        return Refusal(BrokerError("cancelled at the PIN form"), cancelled=True)

    def _paths(self, request: Request, tx: str) -> dict[str, str]:
        root = request.scope.get("root_path", "")
        return {
            "action": f"{root}/{self.name}/login",
            "change_action": f"{root}/{self.name}/new-pin",
            "cancel_action": f"{root}/{self.name}/cancel",
            "retry_url": f"{root}/{self.name}/login?tx={quote(tx, safe='')}",
            # Where the language switch should lead (the layout adds ``lang``): pages shown
            # after a POST have no GET URL of their own, the PIN form is the nearest one.
            "lang_url": f"{root}/{self.name}/login?tx={quote(tx, safe='')}",
            "chooser_url": f"{root}/login?tx={quote(tx, safe='')}",
            "renew_action": f"{root}/{self.name}/renew",
        }

    def _form(self, request: Request, tx: str, fiscal_code: str = "", *,
              error: Text | None = None, error_field: str | None = None,
              status: int = 200) -> Response:
        context = {"tx": tx, "fiscal_code": fiscal_code, "error": error,
                   "error_field": error_field, **self._paths(request, tx)}
        return self.pages.page(request, "pin_login.html", context, status=status)

    def _change_form(self, request: Request, tx: str, token: str, *,
                     error: Text | None = None, status: int = 200) -> Response:
        context = {"tx": tx, "change_token": token, "error": error,
                   "pin_length": 8, **self._paths(request, tx)}
        return self.pages.page(request, "pin_change.html", context, status=status)

    # -- POST /pin/login ---------------------------------------------------------------

    def login(self, step: LoginStep) -> StepResult:
        request, tx, form = step.request, step.tx, step.form
        typed_cf = form.get("fiscal_code", "")[:64]
        pin = _SPACES.sub("", form.get("pin", ""))
        try:
            cf = normalize_person(typed_cf)
        except InvalidFiscalCode as malformed:
            log.info("pin login: malformed codice fiscale (%s)", malformed.detail)
            return self._form(request, tx, typed_cf.strip(), error=malformed.message,
                              error_field="fiscal_code", status=400)
        if not pin:
            return self._form(request, tx, cf, error=MISSING_PIN, error_field="pin",
                              status=400)
        outcome = self._check(cf, pin)
        lock = outcome.lockout
        if outcome.result is Result.OK:
            assert outcome.account is not None
            return self._event(outcome.account)
        if outcome.result is Result.LOCKED and lock.locked_until:
            message = _fmt(LOCKED, until=until_text(lock.locked_until))
            return self._locked(request, tx, cf, message, lock.locked_until)
        if outcome.result is Result.WRONG:
            if lock.locked_until is not None:  # this failure reached the limit
                message = _fmt(JUST_LOCKED, n=self.config.max_failures,
                               until=until_text(lock.locked_until))
                return self._locked(request, tx, cf, message, lock.locked_until)
            return self._form(request, tx, cf, error=AuthenticationFailed.message,
                              error_field="pin", status=AuthenticationFailed.status)
        account = outcome.account
        assert account is not None
        if outcome.result is Result.EXPIRED:
            renew_token = None
            if self.lifecycle is not None:
                from providers.pin.recovery import begin_renewal

                renew_token = begin_renewal(self.services.ephemeral, cf)
            context = {"tx": tx, "renewal_url": self.config.renewal_url,
                       "renew_token": renew_token,
                       "expired_on": account.credential.expires_at.astimezone(ROME)
                       .strftime("%d/%m/%Y"), **self._paths(request, tx)}
            return self.pages.page(request, "pin_expired.html", context, status=403)
        token = begin_change(self.services.ephemeral, tx=tx, fiscal_code=cf,
                             credential_id=account.credential.id, initial_pin=pin,
                             ttl=self.config.change_timeout)
        return self._change_form(request, tx, token)

    def _locked(self, request: Request, tx: str, cf: str, message: Text,
                until: datetime) -> Response:
        response = self._form(request, tx, cf, error=message, error_field="pin", status=429)
        seconds = max(1, int((until - self.services.clock.now()).total_seconds()) + 1)
        response.headers["Retry-After"] = str(seconds)
        return response

    def _check(self, cf: str, pin: str) -> Outcome:
        """Count, verify, classify. Runs in the thread pool (SQLite and argon2id)."""
        now = self.services.clock.now()
        lock = self.store.record_failure(cf, now)
        if lock.refused:
            log.info("pin login refused: %s is locked", mask(cf))
            return Outcome(Result.LOCKED, lock)
        account = self.store.get(cf)
        stored = account.credential.pin_hash if account else None
        if not self.hasher.verify(stored, pin) or account is None:
            log.info("pin login failed for %s (%d consecutive)%s", mask(cf), lock.failed_count,
                     ", now locked" if lock.locked_until else "")
            if lock.locked_until is not None:  # this failure reached the limit
                self.services.audit.record("pin.locked", fiscal_code=cf,
                                           until=lock.locked_until.isoformat(),
                                           failures=lock.failed_count)
            return Outcome(Result.WRONG, lock)
        self.store.record_success(cf)
        credential = account.credential
        if self.hasher.needs_rehash(credential.pin_hash):
            self.store.update_hash(credential.id, credential.pin_hash, self.hasher.hash(pin))
        if credential.expired(now):
            log.info("pin login refused: PIN of %s expired", mask(cf))
            return Outcome(Result.EXPIRED, Lockout(0, None), account)
        if credential.kind is PinKind.INITIAL16:
            return Outcome(Result.INITIAL, Lockout(0, None), account)
        return Outcome(Result.OK, Lockout(0, None), account)

    def _event(self, account: PinAccount) -> AuthEvent:
        person, credential = account.person, account.credential
        extra: dict[str, Any] = {}
        if self.lifecycle is not None and credential.privilege.value == "ordinario":
            pending = self.lifecycle.pending_conversion(person.fiscal_code)
            if pending is not None:
                # An application may be *filed* with this ordinario PIN; it is held until
                # the conversion is approved. Only RPs registered for it act on this.
                extra = {"pin_conversion": "pending", "pin_conversion_id": pending}
        return AuthEvent(
            provider=self.name,
            subject=person.fiscal_code,
            acr=ACR_PIN,
            amr=("pin",),
            auth_time=self.services.clock.now(),
            attributes={
                "fiscal_code": person.fiscal_code,
                "given_name": person.given_name,
                "family_name": person.family_name,
                "email": person.email,
                "mobile_phone": person.mobile_phone,
                "residence": person.residence,
                "italian_document": person.italian_document,
                "pin_privilege": credential.privilege.value,
                "pin_kind": "standard",
                **extra,
            },
        )

    # -- POST /pin/new-pin -------------------------------------------------------------

    def change(self, step: LoginStep) -> StepResult:
        """First login: store the chosen 8-character PIN, then sign in with it."""
        tx, form = step.tx, step.form
        token = form.get("change_token", "")
        change = load_change(self.services.ephemeral, token, tx)
        if change is None:
            return Refusal(LoginExpired("pin change: unknown or foreign token",
                                        message=CHANGE_EXPIRED))
        new_pin = form.get("new_pin", "")
        problem = check_new_pin(new_pin, form.get("new_pin_confirm", ""), change)
        if problem is not None:
            return self._change_form(step.request, tx, token, error=problem, status=400)
        account = self._replace(change, new_pin)
        if account is None:
            return Refusal(LoginExpired("pin change: stale step", message=CHANGE_EXPIRED))
        return self._event(account)

    def _replace(self, change: PendingChange, new_pin: str) -> PinAccount | None:
        """Hash and store the new PIN, once; None when the step was already used or stale."""
        if not consume_change(self.services.ephemeral, change):
            return None
        new_hash = self.hasher.hash(new_pin)
        try:
            self.store.replace_initial(change.fiscal_code, new_hash, self.services.clock.now(),
                                       validity=self.validity, expected_id=change.credential_id)
        except PinStateError:
            log.warning("pin change for %s: initial PIN no longer active",
                        mask(change.fiscal_code))
            return None
        log.info("pin of %s: initial PIN replaced at first login", mask(change.fiscal_code))
        return self.store.get(change.fiscal_code)


def create_pin_provider(config: PinConfig, services: ProviderServices) -> PinProvider:
    """Registry factory: the store on the broker database, the hasher, the demo users."""
    from broker.outbox import Outbox, Sealer, build_worker
    from providers.pin.demo import seed_demo_users
    from providers.pin.lifecycle import PinLifecycle
    from providers.pin.messages import TEMPLATES

    store = PinStore(services.db, max_failures=config.max_failures,
                     lockout_seconds=config.lockout_seconds)
    hasher = PinHasher.from_config(config)
    if config.demo_users:
        created = seed_demo_users(store, services.clock, hasher,
                                  timedelta(days=config.validity_days))
        if created:
            log.info("pin: %d demo users created", len(created))
    outbox = Outbox(services.db, Sealer.from_environment(services.data_dir,
                                                         config.outbox.key_env))
    worker = build_worker(outbox, config.outbox, services.data_dir, services.clock, TEMPLATES)
    from broker.ops.metrics import METRICS

    METRICS.add_gauge("varco_outbox_backlog", "Notifications waiting to be delivered.",
                      lambda: float(outbox.counts().get("pending", 0)))
    lifecycle = PinLifecycle(store, outbox, hasher, services.clock,
                             services.audit,
                             validity=timedelta(days=config.validity_days), kick=worker.kick)
    return PinProvider(config, services, store, hasher, lifecycle, worker)
