"""The SAML refusals are branches of the one exception tree (``broker.errors``).

What a citizen sees of a refused SAML message is a status and a page in their language;
what the log gets is the reason (``detail``). The SPID and CIE profiles keep their own
pages for the same refusals (``ProfileErrors.refusal``).
"""

from __future__ import annotations

import pytest

from broker.errors import BrokerError, ProviderError
from providers.cie.errors import CIE_ERRORS, CieLevelTooLow, CieResponseRejected
from providers.saml.errors import LevelTooLow, LogoutError, SamlError, SignatureError, XmlError
from providers.saml.logout import LogoutError as LogoutFromLogout
from providers.saml.response import LevelTooLow as LevelFromResponse
from providers.saml.response import SamlError as SamlFromResponse
from providers.saml.signing import SignatureError as SignatureFromSigning
from providers.saml.status import ProfileErrors
from providers.saml.xmlutil import XmlError as XmlFromXmlutil
from providers.spid.errors import SPID_ERRORS, SpidLevelTooLow, SpidResponseRejected

KINDS = [SamlError, XmlError, SignatureError, LevelTooLow, LogoutError]


def test_the_classes_are_still_importable_where_they_were() -> None:
    assert (SamlFromResponse, LevelFromResponse, XmlFromXmlutil, SignatureFromSigning,
            LogoutFromLogout) == (SamlError, LevelTooLow, XmlError, SignatureError, LogoutError)


@pytest.mark.parametrize("kind", KINDS)
def test_a_saml_refusal_is_a_broker_error_with_a_page_and_a_log_reason(
        kind: type[SamlError]) -> None:
    error = kind("Assertion signature: does not verify with the IdP metadata certificate")
    assert isinstance(error, ProviderError) and isinstance(error, BrokerError)
    assert not isinstance(error, ValueError), "one tree: no second root"
    assert error.status in (400, 403)
    it, en = error.message.get("it"), error.message.get("en")
    assert it and en and it != en
    # the reason goes to the log, never to the page
    assert str(error) == error.detail
    assert "signature" not in (it + en).lower()
    assert len(error.error_id) == 12


def test_level_too_low_is_a_403_that_says_what_is_missing() -> None:
    error = LevelTooLow("AuthnContextClassRef below the requested level")
    assert error.status == 403
    assert "livello" in error.message.get("it") and "level" in error.message.get("en")


@pytest.mark.parametrize(("profile", "rejected", "too_low", "words"), [
    (SPID_ERRORS, SpidResponseRejected, SpidLevelTooLow, ("gestore SPID", "SPID di livello 2")),
    (CIE_ERRORS, CieResponseRejected, CieLevelTooLow, ("servizio CIE", "accesso con CIE")),
])
def test_each_profile_shows_its_own_pages_for_the_generic_refusals(
        profile: ProfileErrors, rejected: type[SamlError], too_low: type[LevelTooLow],
        words: tuple[str, str]) -> None:
    for generic in (SamlError("Audience is not our entityID"),
                    XmlError("not well-formed XML: XMLSyntaxError"),
                    SignatureError("Response signature: transform refused"),
                    LogoutError("Destination is not our SLO endpoint")):
        page = profile.refusal(generic)
        assert type(page) is rejected, generic
        assert page.status == 400 and words[0] in page.message.get("it")
        assert page.detail == generic.detail, "the log keeps the reason"
    low = profile.refusal(LevelTooLow("AuthnContextClassRef below the requested level"))
    assert type(low) is too_low and low.status == 403
    assert words[1] in low.message.get("it")
    # the profile's refusals are still the generic ones: one tree, caught either way
    assert isinstance(low, LevelTooLow) and isinstance(low, SamlError)
    mine = rejected("assertion replayed")
    assert profile.refusal(mine) is mine
