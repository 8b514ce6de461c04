"""The telephone PIN: made by a citizen signed in with SPID, CIE or CNS, for the contact center.

The page reads the browser's broker session (``ProviderServices.sessions``); a session
holding only a PIN login is refused (the telephone PIN must rest on a stronger identity). The PIN is
shown once and only its hash is kept; it lasts one day, one week, one month or three
months and can be revoked from the same page. It never opens a web session: the login
policy denies ``pin_kind: telephone`` and the web login never even looks at it (it is on
the ``telephone`` channel). Contact-center operators check it through the admin API
(``POST /admin/pin/telephone/verify``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter, Request, Response

from broker.errors import Text
from broker.http.threads import in_thread
from broker.model import BrokerSession
from providers.pin.pages import Field, FormPage, render_form, render_notice, text

if TYPE_CHECKING:
    from providers.pin.provider import PinProvider

T = Text
STRONG_PROVIDERS = frozenset({"spid", "cie", "cns"})
VALIDITY_DAYS = {"1d": 1, "1w": 7, "1m": 30, "3m": 90}

PAGE = FormPage(
    T("PIN telefonico", "Telephone PIN"), "/pin/telephone",
    (Field("validity", T("Per quanto tempo deve valere?", "How long should it be valid?"),
           "radio", options=(("1d", T("Un giorno", "One day")),
                             ("1w", T("Una settimana", "One week")),
                             ("1m", T("Un mese (30 giorni)", "One month (30 days)")),
                             ("3m", T("Tre mesi (90 giorni)", "Three months (90 days)")))),),
    T("Genera il PIN telefonico", "Generate the telephone PIN"),
    T("Il PIN telefonico serve solo per farti riconoscere dagli operatori del Contact Center. "
      "Lo vedrai una sola volta: annotalo. Un nuovo PIN telefonico sostituisce il precedente.",
      "The telephone PIN only identifies you to the Contact Center operators. You will see "
      "it only once: write it down. A new telephone PIN replaces the previous one."))
REVOKE_PAGE = FormPage(T("Revoca il PIN telefonico", "Revoke the telephone PIN"),
                       "/pin/telephone/revoke", (), T("Revoca", "Revoke"))
NEED_STRONG = T(
    "Per gestire il PIN telefonico accedi prima con SPID, CIE o CNS. Il PIN dell'Istituto "
    "non basta.",
    "To manage the telephone PIN, first sign in with SPID, CIE or CNS. The Institute's PIN is "
    "not enough.")


def strong_fiscal_code(session: BrokerSession | None) -> str | None:
    """The codice fiscale of a SPID/CIE/CNS login held by this session, else None."""
    if session is None:
        return None
    for record in session.logins:
        if record.event.provider in STRONG_PROVIDERS and record.decision.allow:
            return record.identity.fiscal_code
    return None


class TelephonePages:
    def __init__(self, provider: PinProvider):
        self.p = provider

    def register(self, router: APIRouter) -> None:
        router.add_api_route("/telephone", self.show, methods=["GET"])
        router.add_api_route("/telephone", self.issue, methods=["POST"])
        router.add_api_route("/telephone/revoke", self.revoke, methods=["POST"])

    def _who(self, request: Request) -> str | None:
        return strong_fiscal_code(self.p.services.sessions.current(request))

    def _refuse(self, request: Request) -> Response:
        return render_notice(self.p, request, PAGE.title, [NEED_STRONG], status=403,
                             error=True)

    async def show(self, request: Request) -> Response:
        cf = await in_thread(self._who, request)
        if cf is None:
            return self._refuse(request)
        expires = await in_thread(self.p.life.telephone_status, cf)
        if expires is None:
            return render_form(self.p, request, PAGE)
        return render_notice(self.p, request, PAGE.title, [T(
            "Hai un PIN telefonico attivo. Puoi generarne uno nuovo (sostituisce l'attuale) "
            "o revocarlo.", "You have an active telephone PIN. You can generate a new one "
            "(it replaces the current one) or revoke it.")],
            facts=[(T("Valido fino al (UTC)", "Valid until (UTC)"),
                    expires.strftime("%Y-%m-%d %H:%M"))], then=REVOKE_PAGE)

    async def issue(self, request: Request) -> Response:
        form = await request.form()
        self.p.pages.verify_csrf(request, text(form, "csrf_token") or None)
        cf = await in_thread(self._who, request)
        if cf is None:
            return self._refuse(request)
        days = VALIDITY_DAYS.get(text(form, "validity"))
        if days is None:
            return render_form(self.p, request, PAGE, error=T(
                "Scegli la durata.", "Choose how long it lasts."), error_field="validity",
                status=400)
        pin, expires = await in_thread(self.p.life.issue_telephone, cf, days,
                                       actor="citizen")
        return render_notice(self.p, request, T("Il tuo PIN telefonico", "Your telephone PIN"), [
            T("Annota il PIN: non sarà più mostrato. Comunicalo solo all'operatore del Contact "
              "Center che ti chiede di identificarti.",
              "Write the PIN down: it will not be shown again. Tell it only to the Contact "
              "Center operator who asks you to identify yourself.")],
            facts=[(T("PIN telefonico", "Telephone PIN"), pin),
                   (T("Valido fino al (UTC)", "Valid until (UTC)"),
                    expires.strftime("%Y-%m-%d %H:%M"))])

    async def revoke(self, request: Request) -> Response:
        form = await request.form()
        self.p.pages.verify_csrf(request, text(form, "csrf_token") or None)
        cf = await in_thread(self._who, request)
        if cf is None:
            return self._refuse(request)
        await in_thread(lambda: self.p.life.revoke(
            cf, actor="citizen", reason="telephone revoked by holder", channel="telephone"))
        return render_notice(self.p, request, T("PIN telefonico revocato",
                                                "Telephone PIN revoked"), [T(
            "Il PIN telefonico non è più valido.", "The telephone PIN is no longer valid.")])
