"""The IdP's failure answers in the SPID and CIE profiles: ``ErrorCode nr<NN>`` and its page.

Both report a failure with status ``Responder`` / ``AuthnFailed`` and a
``StatusMessage`` ``ErrorCode nr<NN>``; code 25 means the citizen cancelled. Each
profile lists the readable text of its codes on a subclass of ``IdpCodeError``.

A message the profile refuses (``providers.saml.errors``) gets the profile's own page
through ``ProfileErrors.refusal``: "the SPID provider's answer is not valid" rather than
the generic identity-provider text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from broker.errors import ProviderError, Text
from providers.saml.errors import LevelTooLow, SamlError

CANCELLED = 25

_CODE = re.compile(r"ErrorCode\s*nr\s*(\d{1,3})", re.IGNORECASE)


def error_code(message: str | None) -> int | None:
    """The number in ``ErrorCode nr<NN>``, or None."""
    m = _CODE.search(message or "")
    return int(m.group(1)) if m else None


class IdpCodeError(ProviderError):
    """The IdP reported an error code (its page from ``texts``) or another failure status."""

    status = 403
    texts: ClassVar[dict[int, Text]] = {}

    def __init__(self, idp_code: int | None, detail: str = ""):
        message = self.texts.get(idp_code or 0, ProviderError.message)
        super().__init__(detail or f"IdP status, code {idp_code}", message=message)
        self.idp_code = idp_code


@dataclass(frozen=True)
class ProfileErrors:
    """The profile's refusals, each with its own citizen text.

    ``rejected`` and ``level_too_low`` specialise ``SamlError`` and ``LevelTooLow``, so a
    profile's refusal is still caught as the generic one.
    """

    rejected: type[SamlError]
    unknown_idp: type[ProviderError]
    level_too_low: type[LevelTooLow]
    idp_code: type[IdpCodeError]

    def refusal(self, error: SamlError) -> SamlError:
        """``error`` as this profile's page: the profile's text, the same reason in the log.

        A level too low keeps its 403 and its own page ("this service needs level 2");
        every other refusal, whichever check failed, is the one "not valid" page: the
        citizen can do nothing different about a bad signature or a wrong audience, and
        the page tells an attacker nothing about which check caught him.
        """
        if isinstance(error, self.rejected):  # already the profile's own
            return error
        kind = self.level_too_low if isinstance(error, LevelTooLow) else self.rejected
        return kind(error.detail)
