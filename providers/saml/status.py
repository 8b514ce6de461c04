"""The IdP's failure answers in the SPID and CIE profiles: ``ErrorCode nr<NN>`` and its page.

Both report a failure with status ``Responder`` / ``AuthnFailed`` and a
``StatusMessage`` ``ErrorCode nr<NN>``; code 25 means the citizen cancelled. Each
profile lists the readable text of its codes on a subclass of ``IdpCodeError``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from broker.errors import ProviderError, Text

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
    """The profile's refusals, each with its own citizen text."""

    rejected: type[ProviderError]
    unknown_idp: type[ProviderError]
    level_too_low: type[ProviderError]
    idp_code: type[IdpCodeError]
