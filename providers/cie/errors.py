"""CIE errors a citizen may see: our refusals and the CIE ID server's error codes.

CIE ID reports a failure like SPID IdPs do (status ``Responder`` / ``AuthnFailed``,
``StatusMessage`` ``ErrorCode nr<NN>``) with its own short list of codes: 1 (the
authentication failed: card, PIN or app), 21 (time out), 22 (the citizen refused to
send the data) and 25 (the citizen cancelled, which goes back to the RP with
``access_denied``). Each other code gets the generic page.
"""

from __future__ import annotations

from typing import ClassVar

from broker.errors import ProviderError, Text
from providers.saml.errors import LevelTooLow, SamlError
from providers.saml.status import CANCELLED, IdpCodeError, ProfileErrors

CIE_CODE_TEXT: dict[int, Text] = {
    1: Text("Autenticazione con la Carta d'Identità Elettronica non riuscita: verifica la "
            "carta, il PIN o l'app CieID e riprova.",
            "Sign-in with the Electronic Identity Card failed: check the card, the PIN or "
            "the CieID app and try again."),
    21: Text("Tempo scaduto durante l'accesso con CIE. Riprova.",
             "The CIE sign-in timed out. Please try again."),
    22: Text("Non hai acconsentito all'invio dei dati della tua CIE. Senza di essi non è "
             "possibile accedere al servizio.",
             "You did not consent to sending the data of your CIE; without it you cannot "
             "sign in to the service."),
    25: Text("Hai annullato l'accesso con CIE.", "You cancelled the CIE sign-in."),
}


class CieResponseRejected(SamlError):
    """A response failed validation (signature, audience, times, replay, level...)."""

    code = "cie_response_rejected"
    status = 400
    message = Text(
        "La risposta ricevuta dal servizio CIE non è valida e non può essere accettata. "
        "Torna al servizio e riprova.",
        "The answer from the CIE service is not valid and cannot be accepted. "
        "Go back to the service and try again.")


class CieUnknownIdp(ProviderError):
    code = "cie_unknown_idp"
    status = 503
    message = Text(
        "L'accesso con CIE non è disponibile in questo momento. Usa un altro metodo.",
        "Sign-in with CIE is not available right now. Use another method.")


class CieLevelTooLow(CieResponseRejected, LevelTooLow):
    code = "cie_level_too_low"
    status = 403
    message = Text(
        "L'accesso con CIE non ha il livello di sicurezza richiesto da questo servizio.",
        "The CIE sign-in does not have the security level this service needs.")


class CieIdpError(IdpCodeError):
    """CIE ID reported an error code (1, 21, 22) or another failure status."""

    code = "cie_idp_error"
    texts: ClassVar[dict[int, Text]] = CIE_CODE_TEXT


class CieNoSingleLogout(ProviderError):
    """A message at ``/cie/slo``: the endpoint the CIE metadata schema demands, unused."""

    code = "cie_no_slo"
    status = 400
    message = Text(
        "Con la CIE non è prevista la disconnessione tramite il servizio CIE: per uscire "
        "usa il pulsante \"Esci\" del servizio.",
        "Signing out through the CIE service is not supported: use the service's "
        "\"Sign out\" button.")


CIE_ERRORS = ProfileErrors(rejected=CieResponseRejected, unknown_idp=CieUnknownIdp,
                            level_too_low=CieLevelTooLow, idp_code=CieIdpError)


__all__ = [
    "CANCELLED",
    "CIE_CODE_TEXT",
    "CIE_ERRORS",
    "CieIdpError",
    "CieLevelTooLow",
    "CieNoSingleLogout",
    "CieResponseRejected",
    "CieUnknownIdp",
]
