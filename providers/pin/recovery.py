"""Recovery (ripristino) and guided renewal pages.

Recovery: the citizen gives the codice fiscale and at least two of the contacts given at
request time. Whatever the answer, the page is the same ("if the data match, a code is
on its way"): wrong contacts reveal nothing, not even which one was wrong. On a match a
recovery code goes to the registered email; with it, a new provisional 16-character PIN
is issued: first half by SMS, second by email. The code is kept only as a SHA-256 digest
in the ephemeral store, single use, with a time limit.

Renewal: the expired-PIN page (after the right, expired PIN) carries a one-time token;
posting it re-checks eligibility by policy and issues a new initial PIN to the contact
and the address on record, without retyping anything.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import secrets
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request, Response

from broker.errors import LoginExpired, Text
from broker.fiscal_code import mask
from broker.http.threads import in_thread
from broker.store.base import EphemeralStore
from providers.pin.citizen import CF_FIELD, CONTACTS, FieldError, _cf, _contacts, eligibility
from providers.pin.generate import recovery_code
from providers.pin.lifecycle import LifecycleError
from providers.pin.pages import (
    Field,
    FormPage,
    checked_form,
    render_form,
    render_notice,
    text,
)
from providers.pin.ratelimit import client_address

if TYPE_CHECKING:
    from providers.pin.provider import PinProvider

log = logging.getLogger("varco.providers.pin.recovery")
T = Text
NS_RECOVERY = "pin_recovery"
NS_RENEW = "pin_renew"
RENEW_TTL = 1800

RECOVERY_PAGE = FormPage(
    T("Ripristino del PIN", "PIN recovery"), "/pin/recovery", (CF_FIELD, *CONTACTS),
    T("Continua", "Continue"),
    T("Indica almeno due dei recapiti che hai dato quando hai richiesto il PIN.",
      "Give at least two of the contacts you gave when you requested the PIN."))
CODE_PAGE = FormPage(
    T("Inserisci il codice di ripristino", "Enter the recovery code"), "/pin/recovery/confirm",
    (CF_FIELD, Field("recovery_code", T("Codice di ripristino", "Recovery code"),
                     hint=T("10 caratteri, ricevuti per email.",
                            "10 characters, received by email."), maxlength=16)),
    T("Ripristina il PIN", "Recover the PIN"))
CODE_WRONG = T("Il codice non è corretto o è scaduto. Ripeti il ripristino.",
               "The code is wrong or has expired. Start the recovery again.")


def _digest(value: str) -> str:
    return hashlib.sha256(value.upper().encode()).hexdigest()


def begin_renewal(store: EphemeralStore, fiscal_code: str) -> str:
    """A one-time token proving this browser just gave the right (expired) PIN."""
    token = secrets.token_urlsafe(24)
    store.put(NS_RENEW, token, fiscal_code, RENEW_TTL)
    return token


class RecoveryPages:
    def __init__(self, provider: PinProvider):
        self.p = provider

    def register(self, router: APIRouter) -> None:
        router.add_api_route("/recovery", self.show, methods=["GET"])
        router.add_api_route("/recovery", self.recovery_post, methods=["POST"])
        router.add_api_route("/recovery/confirm", self.confirm_post, methods=["POST"])
        router.add_api_route("/renew", self.renew_post, methods=["POST"])

    async def show(self, request: Request) -> Response:
        return render_form(self.p, request, RECOVERY_PAGE)

    async def _form(self, request: Request) -> Any:
        return await checked_form(self.p.pages, request)

    async def recovery_post(self, request: Request) -> Response:
        form = await self._form(request)
        values = {k: text(form, k) for k in ("fiscal_code", "mobile_phone", "email", "pec")}
        try:
            cf = _cf(form)
            mobile, email, pec = _contacts(form)
            await in_thread(self.p.limiter.check, "recovery", cf,
                            client_address(request))
        except FieldError as exc:
            return render_form(self.p, request, RECOVERY_PAGE, values=values,
                               error=exc.message, error_field=exc.field, status=400)

        def start() -> None:
            if not self.p.life.contacts_match(cf, mobile=mobile, email=email, pec=pec):
                log.info("pin recovery: contacts do not match for %s", mask(cf))
                return
            code = recovery_code()
            self.p.services.ephemeral.put(NS_RECOVERY, cf, json.dumps(
                {"digest": _digest(code)}), self.p.config.recovery_code_ttl)
            self.p.life.send_recovery_code(cf, code)

        await in_thread(start)
        return render_notice(self.p, request, RECOVERY_PAGE.title, [T(
            "Se i dati corrispondono a quelli registrati, ti abbiamo inviato un codice di "
            "ripristino. Inseriscilo qui sotto entro 30 minuti.",
            "If the data match those on record, we have sent you a recovery code. Enter it "
            "below within 30 minutes.")], then=CODE_PAGE)

    async def confirm_post(self, request: Request) -> Response:
        form = await self._form(request)
        values = {"fiscal_code": text(form, "fiscal_code")}
        try:
            cf = _cf(form)
            await in_thread(self.p.limiter.check, "recovery_code", cf,
                            client_address(request))
        except FieldError as exc:
            return render_form(self.p, request, CODE_PAGE, values=values, error=exc.message,
                               error_field=exc.field, status=400)
        given = re.sub(r"\s", "", text(form, "recovery_code"))

        def confirm() -> str | None:
            raw = self.p.services.ephemeral.get(NS_RECOVERY, cf)
            stored = json.loads(raw)["digest"] if raw else "0" * 64
            if not (hmac.compare_digest(stored, _digest(given)) and raw):
                return None
            if self.p.services.ephemeral.take(NS_RECOVERY, cf) is None:  # used once
                return None
            try:
                return self.p.life.recover(cf).practice_number
            except LifecycleError:
                return None

        practice = await in_thread(confirm)
        if practice is None:
            return render_form(self.p, request, CODE_PAGE, values=values, error=CODE_WRONG,
                               error_field="recovery_code", status=400)
        return render_notice(self.p, request, T("PIN ripristinato", "PIN recovered"), [T(
            "Ti abbiamo inviato un nuovo PIN provvisorio: la prima parte per SMS, la seconda "
            "per email. Al primo accesso inserisci i 16 caratteri e scegli il nuovo PIN di 8 "
            "caratteri. Il PIN precedente non è più valido.",
            "We have sent you a new provisional PIN: the first part by text message, the "
            "second by email. At the first sign-in enter the 16 characters and choose your "
            "new 8-character PIN. The previous PIN is no longer valid.")],
            facts=[(T("Numero di pratica", "Practice number"), practice)])

    async def renew_post(self, request: Request) -> Response:
        form = await self._form(request)
        cf = await in_thread(self.p.services.ephemeral.take, NS_RENEW,
                             text(form, "renew_token"))
        if cf is None:
            raise LoginExpired("pin renewal: unknown or used token")
        person = await in_thread(self.p.store.get_person, cf)
        decision = eligibility(self.p.services.policy.engine, cf,
                               person.residence if person else None,
                               person.italian_document if person else None,
                               self.p.services.clock.now())
        if not decision.allow:
            return render_notice(self.p, request, T("Non puoi rinnovare il PIN",
                                                    "You cannot renew the PIN"),
                                 [T(decision.message_it or "", decision.message_en or "")],
                                 status=403, error=True)
        try:
            issued = await in_thread(self.p.life.renew, cf)
        except LifecycleError:
            return render_notice(self.p, request, T("Rinnovo non possibile",
                                                    "Renewal not possible"), [T(
                "Non troviamo i dati della tua richiesta di PIN: presenta una nuova richiesta.",
                "We cannot find your PIN request data: please submit a new request.")],
                status=409, error=True)
        return render_notice(self.p, request, T("PIN rinnovato", "PIN renewed"), [T(
            "Ti abbiamo inviato un nuovo PIN: la prima parte sul recapito registrato, la "
            "seconda per posta all'indirizzo di residenza. Al primo accesso inserisci i 16 "
            "caratteri e scegli il nuovo PIN di 8 caratteri.",
            "We have sent you a new PIN: the first part to your contact on record, the second "
            "by post to your home address. At the first sign-in enter the 16 characters and "
            "choose your new 8-character PIN.")],
            facts=[(T("Numero di pratica", "Practice number"), issued.practice_number)])
