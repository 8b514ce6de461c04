"""The SAML refusals, as a branch of the one exception tree (``broker.errors``).

Why one module below all the others: ``xmlutil`` (parsing), ``signing`` (signatures),
``response`` (the ACS checks) and ``logout`` (SLO) each raise their own kind, and each
kind must be a ``SamlError``; the base has to sit where every one of them can import
it without a cycle. Each module re-exports its own class, so ``from
providers.saml.response import SamlError`` and the others keep working.

::

    BrokerError
    └── ProviderError
        └── SamlError            a message from an IdP we refuse (400)
            ├── XmlError         not well-formed, too big, a DTD, a bad time
            ├── SignatureError   missing, of a refused shape, or not verifying
            ├── LevelTooLow      a valid login below the level asked for (403)
            └── LogoutError      a logout message we refuse

Every one of them is an expected outcome on attack or broken input, so each carries a
page a citizen can read (Italian first) and a ``detail`` for the log: a short reason
naming the check that failed, never an attribute value or other personal data. The
profiles (SPID, CIE) subclass ``SamlError`` and ``LevelTooLow`` with their own texts and
turn a generic refusal into theirs with ``ProfileErrors.refusal`` (``status``).

Constructing one costs a random ``error_id`` (about a microsecond); the validators
raise only on refusal, so the successful login pays nothing.
"""

from __future__ import annotations

from broker.errors import ProviderError, Text


class SamlError(ProviderError):
    """A SAML message we refuse; ``str()`` is ``detail``, the reason for the log."""

    status = 400
    code = "saml_rejected"
    message = Text(
        "La risposta ricevuta dal gestore dell'identità non è valida e non può essere "
        "accettata. Torna al servizio e riprova.",
        "The answer from the identity provider is not valid and cannot be accepted. "
        "Go back to the service and try again.")


class XmlError(SamlError):
    """A message that is not well-formed, too big, or not what it claims to be."""

    code = "saml_unreadable"


class SignatureError(SamlError):
    """A signature that is missing, malformed, of a refused shape, or does not verify."""

    code = "saml_bad_signature"


class LevelTooLow(SamlError):
    """The assertion's authentication level is below the one requested.

    403, not 400: the answer is genuine, the citizen simply has no credentials of the
    level the service needs, and the page says so instead of "not valid".
    """

    status = 403
    code = "saml_level_too_low"
    message = Text(
        "L'accesso effettuato non ha il livello di sicurezza richiesto da questo servizio.",
        "The sign-in does not have the security level this service needs.")


class LogoutError(SamlError):
    """A LogoutRequest or LogoutResponse we refuse."""

    code = "saml_logout_rejected"
    message = Text(
        "Il messaggio di disconnessione ricevuto dal gestore dell'identità non è valido.",
        "The sign-out message from the identity provider is not valid.")


__all__ = ["LevelTooLow", "LogoutError", "SamlError", "SignatureError", "XmlError"]
