"""Conversion ordinario -> dispositivo: the citizen uploads the signed MV35 and an ID document.

The citizen proves the PIN on the upload form itself (codice fiscale + PIN, counted
against the same lockout as the login). Each file must be a PDF, PNG or JPEG by its
magic bytes (the declared content type and name are ignored) and at most
``upload_max_bytes``; it is stored under a random name in the data folder and served
only to the back office. The PIN stays ordinario until an operator approves.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request, Response

from broker.errors import Text
from broker.fiscal_code import mask
from broker.http.forms import MAX_BODY_BYTES
from broker.http.threads import in_thread
from providers.pin.citizen import CF_FIELD, FieldError, _cf
from providers.pin.lifecycle import LifecycleError
from providers.pin.pages import Field, FormPage, render_form, render_notice, text
from providers.pin.ratelimit import client_address
from providers.pin.uploads import UploadRejected, read_checked, store_file

if TYPE_CHECKING:
    from providers.pin.provider import PinProvider

log = logging.getLogger("varco.providers.pin.conversion")
T = Text

PAGE = FormPage(
    T("Converti il PIN in dispositivo", "Convert your PIN to dispositivo"), "/pin/conversion",
    (CF_FIELD, Field("pin", T("PIN", "PIN"), "password", autocomplete="current-password",
                     maxlength=40),
     Field("mv35", T("Modulo MV35 firmato", "Signed MV35 form"), "file",
           T("PDF, PNG o JPEG, al massimo 5 MB.", "PDF, PNG or JPEG, at most 5 MB.")),
     Field("id_document", T("Documento di identità", "Identity document"), "file",
           T("PDF, PNG o JPEG, al massimo 5 MB.", "PDF, PNG or JPEG, at most 5 MB."))),
    T("Invia la richiesta", "Send the request"),
    T("Con il PIN dispositivo puoi presentare domande di prestazione. Carica il modulo MV35 "
      "firmato e la copia di un documento di identità: un operatore li verificherà.",
      "With a dispositivo PIN you can apply for benefits. Upload the signed MV35 form and a "
      "copy of an identity document: an operator will check them."),
    multipart=True)
UPLOAD_ERRORS = {
    "missing": T("Allega il file.", "Attach the file."),
    "too_large": T("Il file è troppo grande (al massimo 5 MB).",
                   "The file is too large (5 MB at most)."),
    "wrong_type": T("Il file deve essere un PDF, un'immagine PNG o JPEG.",
                    "The file must be a PDF, a PNG or a JPEG image."),
}
STATE_ERRORS = {
    "no_pin": T("Il PIN non è ancora attivo: completa prima il primo accesso con i 16 "
                "caratteri.", "The PIN is not active yet: first complete the first sign-in "
                "with the 16 characters."),
    "already_dispositivo": T("Il tuo PIN è già dispositivo.", "Your PIN is already dispositivo."),
    "pending": T("Hai già una richiesta di conversione in attesa di verifica.",
                 "You already have a conversion request waiting to be checked."),
}


class ConversionPages:
    def __init__(self, provider: PinProvider):
        self.p = provider

    def register(self, router: APIRouter) -> None:
        router.add_api_route("/conversion", self.show, methods=["GET"])
        # Two files and a few fields: above the app's 1 MiB request limit (broker.http.forms).
        router.add_api_route("/conversion", self.post, methods=["POST"],
                             max_body_size=2 * self.p.config.upload_max_bytes + MAX_BODY_BYTES)

    async def show(self, request: Request) -> Response:
        return render_form(self.p, request, PAGE)

    async def post(self, request: Request) -> Response:
        limit = self.p.config.upload_max_bytes
        form: Any = await request.form(max_files=2, max_fields=10)
        self.p.pages.verify_csrf(request, text(form, "csrf_token") or None)
        values = {"fiscal_code": text(form, "fiscal_code")}
        try:
            cf = _cf(form)
            pin = re.sub(r"\s", "", text(form, "pin", 64))
            if not pin:
                raise FieldError("pin", T("Inserisci il PIN.", "Enter your PIN."))
            files = {}
            for name in ("mv35", "id_document"):
                try:
                    files[name] = await read_checked(form.get(name), limit)
                except UploadRejected as exc:
                    raise FieldError(name, UPLOAD_ERRORS[exc.reason]) from exc
        except FieldError as exc:
            return render_form(self.p, request, PAGE, values=values, error=exc.message,
                               error_field=exc.field, status=400)
        await in_thread(self.p.limiter.check, "conversion", cf,
                        client_address(request))
        outcome = await in_thread(self.p._check, cf, pin)
        from providers.pin.provider import Result

        if outcome.result in (Result.WRONG, Result.LOCKED):
            return render_form(self.p, request, PAGE, values=values,
                               error=T("Codice fiscale o PIN non corretti.",
                                       "Wrong codice fiscale or PIN."),
                               error_field="pin", status=401 if outcome.result is Result.WRONG
                               else 429)
        if outcome.result is not Result.OK:  # expired, or still the initial PIN
            return render_form(self.p, request, PAGE, values=values,
                               error=STATE_ERRORS["no_pin"], error_field="pin", status=409)

        def submit() -> int:
            stored = {name: (store_file(self.p.services.data_dir, data, ext), media)
                      for name, (data, ext, media) in files.items()}
            return self.p.life.submit_conversion(cf, stored["mv35"],
                                                      stored["id_document"])

        try:
            conversion_id = await in_thread(submit)
        except LifecycleError as exc:
            return render_form(self.p, request, PAGE, values=values,
                               error=STATE_ERRORS.get(exc.code, STATE_ERRORS["no_pin"]),
                               error_field="pin", status=409)
        log.info("pin conversion %d submitted for %s", conversion_id, mask(cf))
        return render_notice(self.p, request, T("Richiesta inviata", "Request sent"), [T(
            "Abbiamo ricevuto il modulo e il documento. Un operatore li verificherà e ti "
            "avviserà per email; intanto il PIN resta ordinario. I servizi che lo prevedono "
            "accettano già la presentazione di una domanda, che sarà lavorata dopo la "
            "conversione.",
            "We have received the form and the document. An operator will check them and "
            "let you know by email; meanwhile the PIN stays ordinario. Services that allow it "
            "already accept an application being filed, processed after the conversion.")],
            facts=[(T("Numero della richiesta", "Request number"), str(conversion_id))])
