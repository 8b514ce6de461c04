"""SPID errors a citizen may see: our refusals and the IdP's anomaly codes 19–25.

The IdP reports an anomaly with status ``Responder`` / ``AuthnFailed`` and a
``StatusMessage`` of ``ErrorCode nr<NN>``; codes 19–23 become readable pages, 25
(the citizen cancelled) goes back to the RP with ``access_denied``.
"""

from __future__ import annotations

from typing import ClassVar

from broker.errors import ProviderError, Text
from providers.saml.errors import LevelTooLow, SamlError
from providers.saml.status import CANCELLED, IdpCodeError, ProfileErrors
from providers.saml.status import error_code as spid_error_code

SPID_CODE_TEXT: dict[int, Text] = {
    19: Text("Autenticazione non riuscita: hai inserito credenziali errate troppe volte. "
             "Riprova più tardi o rivolgiti al tuo gestore SPID.",
             "Sign-in failed: wrong credentials were entered too many times. "
             "Try again later or contact your SPID provider."),
    20: Text("La tua identità SPID non ha credenziali del livello richiesto da questo servizio "
             "(almeno livello 2). Attivale presso il tuo gestore SPID.",
             "Your SPID identity has no credentials of the level this service needs "
             "(level 2 or higher). Activate them with your SPID provider."),
    21: Text("Tempo scaduto durante l'autenticazione SPID. Riprova.",
             "The SPID sign-in timed out. Please try again."),
    22: Text("Non hai dato il consenso all'invio dei dati richiesti. Senza di essi non è "
             "possibile accedere al servizio.",
             "You did not consent to sending the requested data; without it you cannot "
             "sign in to the service."),
    23: Text("La tua identità SPID è sospesa o revocata, o le credenziali sono bloccate. "
             "Rivolgiti al tuo gestore SPID.",
             "Your SPID identity is suspended or revoked, or its credentials are locked. "
             "Contact your SPID provider."),
    24: Text("Il gestore SPID non ha potuto completare l'autenticazione. Riprova.",
             "The SPID provider could not complete the sign-in. Please try again."),
    25: Text("Hai annullato l'accesso con SPID.", "You cancelled the SPID sign-in."),
    30: Text("Questo servizio chiede un'identità SPID per uso professionale (della persona "
             "fisica o della persona giuridica), che la tua identità non è. Accedi con "
             "un'identità SPID professionale oppure chiedila al tuo gestore SPID.",
             "This service asks for a SPID identity for professional use (of a natural "
             "person or of a legal person), which your identity is not. Sign in with a "
             "professional SPID identity, or ask your SPID provider for one."),
}

class SpidResponseRejected(SamlError):
    """A response failed validation (signature, audience, times, replay, level...)."""

    code = "spid_response_rejected"
    status = 400
    message = Text(
        "La risposta ricevuta dal gestore SPID non è valida e non può essere accettata. "
        "Torna al servizio e riprova.",
        "The answer from the SPID provider is not valid and cannot be accepted. "
        "Go back to the service and try again.")


class SpidUnknownIdp(ProviderError):
    code = "spid_unknown_idp"
    status = 400
    message = Text(
        "Il gestore SPID scelto non è disponibile. Scegline un altro.",
        "The chosen SPID provider is not available. Choose another one.")


class SpidLevelTooLow(SpidResponseRejected, LevelTooLow):
    code = "spid_level_too_low"
    status = 403
    message = Text(
        "Per questo servizio serve SPID di livello 2 o superiore.",
        "This service needs SPID level 2 or higher.")


class SpidIdpError(IdpCodeError):
    """The IdP reported an anomaly (SPID error codes 19–24) or another failure status."""

    code = "spid_idp_error"
    texts: ClassVar[dict[int, Text]] = SPID_CODE_TEXT


SPID_ERRORS = ProfileErrors(rejected=SpidResponseRejected, unknown_idp=SpidUnknownIdp,
                            level_too_low=SpidLevelTooLow, idp_code=SpidIdpError)


__all__ = [
    "CANCELLED",
    "SPID_CODE_TEXT",
    "SPID_ERRORS",
    "SpidIdpError",
    "SpidLevelTooLow",
    "SpidResponseRejected",
    "SpidUnknownIdp",
    "spid_error_code",
]
