"""The one exception tree of Varco.

Every error the broker raises on purpose is a ``BrokerError``: it knows its HTTP
status, a stable machine code, and the message a citizen may read (Italian first,
English too). The detail for operators goes to the log only, never to the page,
and an ``error_id`` joins the page the citizen sees to that log line.
One FastAPI handler (``broker.app``) renders them all.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass


@dataclass(frozen=True)
class Text:
    """A message in Italian and English; Italian is the default language."""

    it: str
    en: str

    def get(self, lang: str) -> str:
        return self.en if lang == "en" else self.it


def new_error_id() -> str:
    """Short random id shown to the citizen and written in the log line."""
    return secrets.token_hex(6)


class BrokerError(Exception):
    """Root of every deliberate error.

    ``detail`` is for the log (may name internals, never secrets or personal data
    in clear); ``message`` is for the citizen.
    """

    status: int = 400
    code: str = "error"
    message: Text = Text(
        "Si è verificato un errore. Riprova più tardi.",
        "Something went wrong. Please try again later.",
    )

    def __init__(self, detail: str = "", *, message: Text | None = None, status: int | None = None):
        super().__init__(detail or self.code)
        self.detail = detail or self.code
        if message is not None:
            self.message = message
        if status is not None:
            self.status = status
        self.error_id = new_error_id()


class ConfigError(BrokerError):
    """Configuration that cannot be used; raised at start, lists every problem at once."""

    status = 500
    code = "config_error"

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))

    def __str__(self) -> str:
        return "\n".join(self.problems)


class PolicyError(BrokerError):
    """A policy or mapping file that does not validate (each problem carries file:line)."""

    status = 500
    code = "policy_error"

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))

    def __str__(self) -> str:
        return "\n".join(self.problems)


class BadRequest(BrokerError):
    status = 400
    code = "bad_request"
    message = Text(
        "La richiesta non è valida.",
        "The request is not valid.",
    )


class CsrfError(BadRequest):
    status = 403
    code = "csrf"
    message = Text(
        "La pagina è scaduta o la richiesta non proviene da questo sito. "
        "Torna indietro, ricarica la pagina e riprova.",
        "The page has expired or the request did not come from this site. "
        "Go back, reload the page and try again.",
    )


class InvalidFiscalCode(BadRequest):
    code = "invalid_fiscal_code"
    message = Text(
        "Il codice fiscale non è valido: controlla i 16 caratteri.",
        "The codice fiscale (tax code) is not valid: check its 16 characters.",
    )


class LoginExpired(BadRequest):
    """The login transaction is unknown, expired, or belongs to another browser."""

    code = "login_expired"
    message = Text(
        "La sessione di accesso è scaduta. Torna al servizio e ricomincia.",
        "The login session has expired. Go back to the service and start again.",
    )


class AuthenticationFailed(BrokerError):
    """Credentials did not verify. Deliberately says nothing about which part was wrong."""

    status = 401
    code = "authentication_failed"
    message = Text(
        "Codice fiscale o PIN non corretti.",
        "Wrong codice fiscale or PIN.",
    )


class AccessDenied(BrokerError):
    """Policy said no; ``message`` is the policy's readable reason."""

    status = 403
    code = "access_denied"
    message = Text(
        "Non è possibile accedere con queste credenziali.",
        "You cannot sign in with these credentials.",
    )


class ProviderError(BrokerError):
    """An external identity provider answered with something we refuse."""

    status = 400
    code = "provider_error"
    message = Text(
        "La risposta del gestore dell'identità non è valida. Riprova.",
        "The identity provider's answer is not valid. Please try again.",
    )


class ServiceUnavailable(BrokerError):
    status = 503
    code = "temporarily_unavailable"
    message = Text(
        "Il servizio è momentaneamente non disponibile. Riprova tra qualche minuto.",
        "The service is temporarily unavailable. Please try again in a few minutes.",
    )


class NotFound(BrokerError):
    status = 404
    code = "not_found"
    message = Text("Pagina non trovata.", "Page not found.")
