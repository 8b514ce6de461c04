"""CIE config: every mistake is refused at load with its reason; a good section loads."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from providers.cie.config import CieConfig

BASE: dict[str, Any] = {
    "profile": "public", "ipa_code": "inps", "municipality": "H501",
    "organization": {"name": "INPS", "display_name": "INPS", "url": "https://www.inps.it"},
    "contact": {"email": "cie@example.it"}}
PRIVATE = {**{k: v for k, v in BASE.items() if k != "ipa_code"}, "profile": "private",
           "vat_number": "IT12345678903", "fiscal_code": "12345678903", "nace2_code": "62.01"}


def test_good_sections_load_with_the_four_cie_attributes():
    cfg = CieConfig.model_validate(BASE)
    assert cfg.attributes == ("name", "familyName", "dateOfBirth", "fiscalNumber")
    assert cfg.comparison == "minimum" and cfg.level == 2
    assert CieConfig.model_validate(PRIVATE).organization_identifier == "VATIT-12345678903"


@pytest.mark.parametrize("change, want_error", [
    ({"ipa_code": None}, "profile public needs ipa_code"),
    ({"municipality": "Roma centro"}, "municipality"),
    ({"attributes": ["name", "email"]}, "unknown attributes: ['email']"),
    ({"comparison": "better"}, "comparison"),
    ({"level": 4}, "level"),
    ({"slo": True}, "Extra inputs are not permitted"),
])
def test_public_mistakes_are_refused(change: dict[str, Any], want_error: str):
    with pytest.raises(ValidationError) as err:
        CieConfig.model_validate({**BASE, **change})
    assert want_error in str(err.value)


@pytest.mark.parametrize("missing", ["vat_number", "fiscal_code", "nace2_code"])
def test_private_profile_needs_vat_fiscal_code_and_nace2(missing: str):
    with pytest.raises(ValidationError) as err:
        CieConfig.model_validate({k: v for k, v in PRIVATE.items() if k != missing})
    assert f"profile private needs {missing}" in str(err.value)
