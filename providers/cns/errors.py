"""CNS refusals a citizen may see, each with its own status and readable message.

Every one is a ``ProviderError`` (a ``BrokerError``): the hub renders it as our error page
with an error id; ``detail`` (for the log) never holds the codice fiscale in clear.
"""

from __future__ import annotations

from broker.errors import ProviderError, Text


class CnsError(ProviderError):
    """Root of the CNS refusals."""

    code = "cns_error"
    status = 400
    message = Text(
        "Non è stato possibile accedere con la Carta Nazionale dei Servizi. Riprova.",
        "Sign-in with the Carta Nazionale dei Servizi failed. Please try again.")


class CnsNoCertificate(CnsError):
    code = "cns_no_certificate"
    status = 400
    message = Text(
        "Il browser non ha presentato alcun certificato. Inserisci la carta (o la chiavetta) "
        "nel lettore, scegli il certificato di autenticazione quando il browser lo chiede "
        "e riprova.",
        "Your browser did not present a certificate. Insert the card (or token) in the "
        "reader, choose the authentication certificate when the browser asks, and try again.")


class CnsUntrustedProxy(CnsError):
    code = "cns_untrusted_proxy"
    status = 403
    message = Text(
        "La richiesta non proviene dal punto di accesso previsto per la CNS.",
        "The request did not come through the expected CNS access point.")


class CnsChallengeInvalid(CnsError):
    """The one-time challenge is unknown, expired or already used (a replay)."""

    code = "cns_challenge_invalid"
    status = 400
    message = Text(
        "Questo collegamento di accesso con la CNS è già stato usato o è scaduto. "
        "Torna al servizio e ricomincia l'accesso.",
        "This CNS sign-in link has already been used or has expired. "
        "Go back to the service and start the sign-in again.")


class CnsMalformedCertificate(CnsError):
    code = "cns_malformed_certificate"
    status = 400
    message = Text(
        "Il certificato presentato non è leggibile.",
        "The certificate presented cannot be read.")


class CnsUnknownIssuer(CnsError):
    code = "cns_unknown_issuer"
    status = 403
    message = Text(
        "Il certificato non è stato emesso da un certificatore CNS riconosciuto.",
        "The certificate was not issued by a recognised CNS certification authority.")


class CnsExpired(CnsError):
    code = "cns_expired"
    status = 403
    message = Text(
        "Il certificato della carta è scaduto. Rinnova la carta presso chi l'ha rilasciata.",
        "The card's certificate has expired. Renew the card with its issuer.")


class CnsNotYetValid(CnsError):
    code = "cns_not_yet_valid"
    status = 403
    message = Text(
        "Il certificato della carta non è ancora valido. Riprova dalla data di inizio validità.",
        "The card's certificate is not valid yet. Try again from its start date.")


class CnsRevoked(CnsError):
    code = "cns_revoked"
    status = 403
    message = Text(
        "Il certificato della carta è stato revocato o sospeso e non può essere usato.",
        "The card's certificate has been revoked or suspended and cannot be used.")


class CnsRevocationUnknown(CnsError):
    """Our side cannot tell whether the certificate is revoked (no current CRL, no OCSP)."""

    code = "cns_revocation_unknown"
    status = 503
    message = Text(
        "Al momento non è possibile verificare la validità della carta. "
        "Riprova tra qualche minuto o scegli un altro metodo di accesso.",
        "The card's validity cannot be checked right now. "
        "Try again in a few minutes or choose another sign-in method.")


class CnsNoFiscalCode(CnsError):
    code = "cns_no_fiscal_code"
    status = 403
    message = Text(
        "Il certificato non contiene un codice fiscale valido: non è un certificato di "
        "autenticazione CNS.",
        "The certificate holds no valid codice fiscale: it is not a CNS authentication "
        "certificate.")


ERRORS: dict[str, type[CnsError]] = {
    cls.code: cls for cls in (
        CnsError, CnsNoCertificate, CnsUntrustedProxy, CnsChallengeInvalid,
        CnsMalformedCertificate, CnsUnknownIssuer, CnsExpired, CnsNotYetValid, CnsRevoked,
        CnsRevocationUnknown, CnsNoFiscalCode)
}
