"""Citizen pages of the PIN lifecycle: request, activation, duplicate letter, revocation, renewal.

Each POST checks, in order: CSRF; the fields (a clear message on the field, nothing
counted); the rate limits per codice fiscale and per address; then the state change.
Answers that could tell a stranger whether someone holds a PIN (duplicate, revocation)
are the same whether or not the data matched.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Literal

from fastapi import APIRouter, Request, Response

from broker.errors import InvalidFiscalCode, Text
from broker.fiscal_code import mask, normalize_person
from broker.http.threads import in_thread
from broker.model import AuthEvent, ClientInfo, Decision, Identity
from broker.policy import PolicyEngine, PolicyInput
from providers.pin.acr import ACR_PIN
from providers.pin.lifecycle import (
    LifecycleError,
    NewRequest,
    normalize_email,
    normalize_phone,
)
from providers.pin.pages import (
    Field,
    FormPage,
    checked_form,
    render_form,
    render_notice,
    text,
)
from providers.pin.ratelimit import client_address
from providers.pin.records import Address
from providers.pin.store import PinPerson

if TYPE_CHECKING:
    from providers.pin.provider import PinProvider

log = logging.getLogger("varco.providers.pin.citizen")

EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[A-Za-z]{2,}$")
PHONE = re.compile(r"^\+?[0-9]{6,15}$")
CARD = re.compile(r"^[0-9]{20}$")

T = Text
CF_FIELD = Field("fiscal_code", T("Codice fiscale", "Codice fiscale (tax code)"),
                 hint=T("16 caratteri.", "16 characters."), maxlength=20)
YES_NO = (("no", T("No", "No")), ("yes", T("Sì", "Yes")))
CONTACTS = (
    Field("mobile_phone", T("Cellulare", "Mobile phone"), "tel",
          T("Con il prefisso internazionale, per esempio +1 555 0100.",
            "With the country code, e.g. +1 555 0100."), autocomplete="tel", required=False),
    Field("email", T("Email", "Email"), "email", autocomplete="email", required=False),
    Field("pec", T("PEC (posta elettronica certificata)", "PEC (certified email)"), "email",
          required=False),
)
CARD_FIELDS = (
    Field("health_card_number", T("Numero della tessera sanitaria", "Health card number"),
          hint=T("Le 20 cifre sul retro della tessera.", "The 20 digits on the back of the card."),
          maxlength=24),
    Field("health_card_expiry", T("Scadenza della tessera sanitaria", "Health card expiry"),
          "date", T("Nel formato AAAA-MM-GG.", "As YYYY-MM-DD.")),
)
REQUEST_PAGE = FormPage(
    T("Richiedi il PIN", "Request a PIN"), "/pin/request",
    (CF_FIELD,
     Field("given_name", T("Nome", "Given name"), autocomplete="given-name"),
     Field("family_name", T("Cognome", "Family name"), autocomplete="family-name"),
     Field("residence", T("Dove risiedi?", "Where do you live?"), "radio",
           options=(("abroad", T("All'estero", "Abroad")), ("italy", T("In Italia", "In Italy")))),
     Field("italian_document", T("Hai un documento di identità italiano valido?",
                                 "Do you hold a valid Italian identity document?"), "radio",
           options=YES_NO),
     Field("street", T("Indirizzo di residenza", "Home address"), autocomplete="street-address"),
     Field("postal_code", T("Codice postale", "Postal code"), autocomplete="postal-code",
           maxlength=16),
     Field("city", T("Città", "City"), autocomplete="address-level2"),
     Field("country", T("Stato", "Country"), autocomplete="country-name"),
     *CONTACTS,
     Field("first_half_channel", T("Come vuoi ricevere la prima parte del PIN?",
                                   "How do you want to receive the first part of the PIN?"),
           "radio", T("La seconda parte arriva sempre per posta all'indirizzo di residenza.",
                      "The second part always comes by post to your home address."),
           options=(("sms", T("SMS", "Text message")), ("email", T("Email", "Email")),
                    ("pec", T("PEC", "PEC")))),
     *CARD_FIELDS),
    T("Invia la richiesta", "Send the request"),
    T("Dal 1° ottobre 2021 il PIN è rilasciato solo a chi risiede all'estero e non ha un "
      "documento di identità italiano. Indica almeno due recapiti: servono anche per il "
      "ripristino del PIN.",
      "Since 1 October 2021 the PIN is issued only to people living abroad without an Italian "
      "identity document. Give at least two contacts: they are also needed to recover the PIN."))
ACTIVATE_PAGE = FormPage(
    T("Attiva il PIN", "Activate your PIN"), "/pin/activate",
    (CF_FIELD, Field("first_half", T("Prima parte del PIN", "First part of the PIN"),
                     "password", T("Gli 8 caratteri ricevuti per SMS, email o PEC.",
                                   "The 8 characters you received by text, email or PEC."),
                     maxlength=12), *CARD_FIELDS),
    T("Attiva", "Activate"))
DUPLICATE_PAGE = FormPage(
    T("Lettera non ricevuta: chiedi un duplicato", "Letter not received: ask for a duplicate"),
    "/pin/duplicate",
    (CF_FIELD, Field("practice_number", T("Numero di pratica", "Practice number"),
                     hint=T("Lo trovi nel messaggio con la prima parte del PIN.",
                            "It is in the message with the first part of the PIN."),
                     maxlength=24)),
    T("Chiedi il duplicato", "Ask for a duplicate"),
    T("Le due parti del PIN non vengono conservate: riceverai un nuovo PIN iniziale, con la "
      "prima parte sul tuo recapito e la seconda per posta all'indirizzo registrato.",
      "The two parts of the PIN are not kept: you will receive a new initial PIN, the first "
      "part on your contact and the second by post to the address on record."))
REVOKE_PAGE = FormPage(
    T("Revoca il PIN smarrito", "Revoke a lost PIN"), "/pin/revoke",
    (CF_FIELD, *CONTACTS), T("Revoca il PIN", "Revoke the PIN"),
    T("Indica almeno due dei recapiti registrati. Dopo la revoca potrai richiedere un nuovo PIN.",
      "Give at least two of the contacts on record. After the revocation you can request a "
      "new PIN."))

NOT_ELIGIBLE_TITLE = T("Non puoi richiedere il PIN", "You cannot request a PIN")
EXISTS = T("Per questo codice fiscale esiste già un PIN valido o una richiesta in corso. Se "
           "hai dimenticato il PIN usa il ripristino; se non hai ricevuto la lettera chiedi "
           "un duplicato.",
           "A valid PIN or a request in progress already exists for this codice fiscale. If "
           "you forgot the PIN use the recovery; if the letter did not arrive, ask for a "
           "duplicate.")
ACTIVATION_FAILED = T("I dati non corrispondono a una richiesta di PIN da attivare. Controlla "
                      "la prima parte del PIN e i dati della tessera sanitaria.",
                      "The data do not match a PIN request awaiting activation. Check the "
                      "first part of the PIN and your health card details.")
TWO_CONTACTS = T("Indica almeno due recapiti (cellulare, email, PEC).",
                 "Give at least two contacts (mobile phone, email, PEC).")


class FieldError(Exception):
    def __init__(self, field: str, message: Text):
        super().__init__(field)
        self.field = field
        self.message = message


def _cf(form: Any) -> str:
    try:
        return normalize_person(text(form, "fiscal_code", 64))
    except InvalidFiscalCode as exc:
        raise FieldError("fiscal_code", exc.message) from exc


def _required(form: Any, name: str, label: Text, limit: int = 100) -> str:
    value = text(form, name, limit)
    if not value:
        raise FieldError(name, T(f"Compila il campo «{label.it}».", f"Fill in “{label.en}”."))
    return value


def _contacts(form: Any) -> tuple[str, str, str]:
    mobile, email, pec = (text(form, n) for n in ("mobile_phone", "email", "pec"))
    if mobile and not PHONE.match(normalize_phone(mobile)):
        raise FieldError("mobile_phone", T("Il numero di cellulare non è valido.",
                                           "The mobile number is not valid."))
    for name, value in (("email", email), ("pec", pec)):
        if value and not EMAIL.match(value):
            raise FieldError(name, T("L'indirizzo email non è valido.",
                                     "The email address is not valid."))
    if sum(bool(v) for v in (mobile, email, pec)) < 2:
        raise FieldError("mobile_phone", TWO_CONTACTS)
    return normalize_phone(mobile), normalize_email(email), normalize_email(pec)


def _card(form: Any) -> tuple[str, date]:
    number = re.sub(r"\s", "", text(form, "health_card_number"))
    if not CARD.match(number):
        raise FieldError("health_card_number", T(
            "Il numero della tessera sanitaria ha 20 cifre.",
            "The health card number has 20 digits."))
    try:
        expiry = date.fromisoformat(text(form, "health_card_expiry"))
    except ValueError:
        raise FieldError("health_card_expiry", T(
            "Scrivi la scadenza come AAAA-MM-GG.", "Write the expiry as YYYY-MM-DD.")) from None
    return number, expiry


def _residence(value: str) -> Literal["italy", "abroad"]:
    if value == "italy":
        return "italy"
    if value == "abroad":
        return "abroad"
    raise FieldError("residence", T("Indica dove risiedi.", "Say where you live."))


def eligibility(engine: PolicyEngine, cf: str, residence: Literal["italy", "abroad"] | None,
                italian_document: bool | None, now: datetime) -> Decision:
    """Ask the policy (``policies/pin_request.yaml``) whether this person may have a PIN."""
    event = AuthEvent(provider="pin_request", subject=cf, acr=ACR_PIN, amr=("pin",),
                      auth_time=now, attributes={"residence": residence,
                                                 "italian_document": italian_document})
    identity = Identity(fiscal_code=cf, residence=residence,
                        italian_document=italian_document)
    return engine.decide(PolicyInput(event=event, identity=identity, now=now,
                                     client=ClientInfo(client_id="pin-request",
                                                       name="PIN request")))


class CitizenPages:
    """Routes for request, activation, duplicate letter, revocation; added to the provider."""

    def __init__(self, provider: PinProvider):
        self.p = provider

    def register(self, router: APIRouter) -> None:
        for path, page in (("/request", REQUEST_PAGE), ("/activate", ACTIVATE_PAGE),
                           ("/duplicate", DUPLICATE_PAGE), ("/revoke", REVOKE_PAGE)):
            router.add_api_route(path, self._show(page), methods=["GET"])
        router.add_api_route("/request", self.request_post, methods=["POST"])
        router.add_api_route("/activate", self.activate_post, methods=["POST"])
        router.add_api_route("/duplicate", self.duplicate_post, methods=["POST"])
        router.add_api_route("/revoke", self.revoke_post, methods=["POST"])

    def _show(self, page: FormPage) -> Callable[[Request], Awaitable[Response]]:
        async def show(request: Request) -> Response:
            return render_form(self.p, request, page)
        return show

    async def _form(self, request: Request) -> Any:
        return await checked_form(self.p.pages, request)

    # -- request ---------------------------------------------------------------------

    async def request_post(self, request: Request) -> Response:
        form = await self._form(request)
        values = {k: v for k, v in form.items() if isinstance(v, str) and k != "csrf_token"}
        try:
            cf = _cf(form)
            names = [_required(form, f.name, f.label) for f in REQUEST_PAGE.fields[1:3]]
            residence = _residence(text(form, "residence"))
            document = text(form, "italian_document")
            if document not in ("yes", "no"):
                raise FieldError("italian_document", T(
                    "Indica se hai un documento italiano.",
                    "Say whether you hold an Italian document."))
            street, postal, city, country = (_required(form, f.name, f.label)
                                             for f in REQUEST_PAGE.fields[5:9])
            mobile, email, pec = _contacts(form)
            channel = text(form, "first_half_channel")
            given = {"sms": mobile, "email": email, "pec": pec}
            if not given.get(channel):
                raise FieldError("first_half_channel", T(
                    "Scegli un canale per cui hai indicato il recapito.",
                    "Choose a channel whose contact you gave."))
            card_number, card_expiry = _card(form)
            if card_expiry <= self.p.services.clock.now().date():
                raise FieldError("health_card_expiry", T("La tessera sanitaria è scaduta.",
                                                         "The health card has expired."))
        except FieldError as exc:
            return render_form(self.p, request, REQUEST_PAGE, values=values, error=exc.message,
                               error_field=exc.field, status=400)
        await in_thread(self.p.limiter.check, "request", cf, client_address(request))
        now = self.p.services.clock.now()
        decision = eligibility(self.p.services.policy.engine, cf, residence,
                               document == "yes", now)
        if not decision.allow:
            log.info("pin request refused by policy for %s (%s)", mask(cf), decision.reason)
            return render_notice(self.p, request, NOT_ELIGIBLE_TITLE, [T(
                decision.message_it or "", decision.message_en or "")], status=403, error=True)
        person = PinPerson(cf, names[0], names[1], email or None, mobile or None, pec or None,
                           residence, document == "yes")
        address = Address(f"{names[0]} {names[1]}", street, postal, city, country)
        try:
            issued = await in_thread(self.p.life.request, NewRequest(
                person, address, channel, card_number, card_expiry))  # type: ignore[arg-type]
        except LifecycleError:
            return render_notice(self.p, request, REQUEST_PAGE.title, [EXISTS], status=409,
                                 error=True)
        where = T({"sms": "per SMS", "email": "per email", "pec": "per PEC"}[channel],
                  {"sms": "by text message", "email": "by email", "pec": "by PEC"}[channel])
        return render_notice(self.p, request, T("Richiesta ricevuta", "Request received"), [
            T(f"Ti abbiamo inviato la prima parte del PIN {where.it}; la seconda arriverà per "
              "posta all'indirizzo di residenza. Quando avrai la prima parte, attiva il PIN.",
              f"We sent you the first part of the PIN {where.en}; the second will come by post "
              "to your home address. Once you have the first part, activate the PIN.")],
            facts=[(T("Numero di pratica", "Practice number"), issued.practice_number)],
            then=ACTIVATE_PAGE)

    # -- activation --------------------------------------------------------------------

    async def activate_post(self, request: Request) -> Response:
        form = await self._form(request)
        values = {"fiscal_code": text(form, "fiscal_code"),
                  "health_card_expiry": text(form, "health_card_expiry")}
        try:
            cf = _cf(form)
            half = re.sub(r"\s", "", text(form, "first_half"))
            if not half:
                raise FieldError("first_half", T("Inserisci la prima parte del PIN.",
                                                 "Enter the first part of the PIN."))
            card_number, card_expiry = _card(form)
        except FieldError as exc:
            return render_form(self.p, request, ACTIVATE_PAGE, values=values,
                               error=exc.message, error_field=exc.field, status=400)
        await in_thread(self.p.limiter.check, "activate", cf,
                        client_address(request))
        refused = await in_thread(self.p.count_attempt, cf)
        if refused is not None:
            return render_form(self.p, request, ACTIVATE_PAGE, values=values, error=refused,
                               error_field="first_half", status=429)
        ok = await in_thread(self.p.life.activate, cf, half, card_number,
                             card_expiry)
        if not ok:
            log.info("pin activation failed for %s", mask(cf))
            return render_form(self.p, request, ACTIVATE_PAGE, values=values,
                               error=ACTIVATION_FAILED, error_field="first_half", status=401)
        await in_thread(self.p.store.record_success, cf)
        return render_notice(self.p, request, T("PIN attivato", "PIN activated"), [T(
            "Il PIN è attivo. Quando arriverà la lettera, accedi a un servizio inserendo la "
            "prima e la seconda parte (16 caratteri): ti chiederemo di scegliere il PIN di 8 "
            "caratteri da usare da allora in poi.",
            "Your PIN is active. When the letter arrives, sign in to a service with the first "
            "and the second part (16 characters): you will then choose the 8-character PIN "
            "to use from then on.")])

    # -- duplicate letter and revocation ---------------------------------------------------

    async def duplicate_post(self, request: Request) -> Response:
        form = await self._form(request)
        values = {"fiscal_code": text(form, "fiscal_code"),
                  "practice_number": text(form, "practice_number")}
        try:
            cf = _cf(form)
            practice = _required(form, "practice_number", DUPLICATE_PAGE.fields[1].label, 40)
            await in_thread(self.p.limiter.check, "duplicate", cf,
                            client_address(request))
        except FieldError as exc:
            return render_form(self.p, request, DUPLICATE_PAGE, values=values,
                               error=exc.message, error_field=exc.field, status=400)
        try:
            await in_thread(self.p.life.reissue_letter, cf, practice.upper(),
                            actor="citizen", reason="letter not received")
        except LifecycleError:
            log.info("pin duplicate: no match for %s", mask(cf))
        return render_notice(self.p, request, DUPLICATE_PAGE.title, [T(
            "Se il numero di pratica e il codice fiscale corrispondono a una richiesta in corso, "
            "ti abbiamo inviato un nuovo PIN iniziale: la prima parte sul tuo recapito, la "
            "seconda per posta. Il PIN precedente non è più valido.",
            "If the practice number and the codice fiscale match a request in progress, we "
            "have sent you a new initial PIN: the first part to your contact, the second by "
            "post. The previous PIN is no longer valid.")])

    async def revoke_post(self, request: Request) -> Response:
        form = await self._form(request)
        values = {k: text(form, k) for k in ("fiscal_code", "mobile_phone", "email", "pec")}
        try:
            cf = _cf(form)
            mobile, email, pec = _contacts(form)
            await in_thread(self.p.limiter.check, "revoke", cf, client_address(request))
        except FieldError as exc:
            return render_form(self.p, request, REVOKE_PAGE, values=values, error=exc.message,
                               error_field=exc.field, status=400)

        def revoke() -> None:
            if self.p.life.contacts_match(cf, mobile=mobile, email=email, pec=pec):
                self.p.life.revoke(cf, actor="citizen", reason="lost")

        await in_thread(revoke)
        return render_notice(self.p, request, REVOKE_PAGE.title, [T(
            "Se i dati corrispondono a quelli registrati, il PIN è stato revocato e riceverai "
            "una conferma per email. Ora puoi richiedere un nuovo PIN.",
            "If the data match those on record, the PIN has been revoked and you will get a "
            "confirmation by email. You can now request a new PIN.")])
