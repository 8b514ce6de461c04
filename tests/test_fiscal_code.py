"""Codice fiscale validation: what a citizen typing a code, or an IdP sending one, meets."""

from __future__ import annotations

from datetime import date

import pytest

from broker.errors import InvalidFiscalCode
from broker.fiscal_code import (
    check_character,
    decode_birth_date,
    is_person,
    mask,
    normalize_company,
    normalize_person,
)

PERSON_CASES = [
    # (name, input, want, want_error substring)
    ("demo abroad dispositivo", "BNCLRA85M41Z404W", "BNCLRA85M41Z404W", None),
    ("demo abroad ordinario", "VRDGPP70C15Z110R", "VRDGPP70C15Z110R", None),
    ("demo resident in Italy", "RSSMRA80A01H501U", "RSSMRA80A01H501U", None),
    ("textbook example", "MRTMTT25D09F205Z", "MRTMTT25D09F205Z", None),
    ("lowercase and spaces are normalised", "  rssmra80a01h501u ", "RSSMRA80A01H501U", None),
    ("spaces inside (as printed on cards)", "RSS MRA 80A01 H501U", "RSSMRA80A01H501U", None),
    ("omocodia: last digit 1 -> M", "RSSMRA80A01H50MM", "RSSMRA80A01H50MM", None),
    ("omocodia: two substitutions", "RSSMRA80A01H5LMX", "RSSMRA80A01H5LMX", None),
    ("omocodia: all seven digits", "RSSMRAULALMHRLMD", "RSSMRAULALMHRLMD", None),
    ("woman: day + 40", "BNCLRA85M41Z404W", "BNCLRA85M41Z404W", None),
    ("empty", "", None, "0 characters"),
    ("too short", "RSSMRA80A01H501", None, "15 characters"),
    ("too long", "RSSMRA80A01H501UX", None, "17 characters"),
    ("wrong check character", "RSSMRA80A01H501X", None, "wrong check character"),
    ("digit where a letter goes", "RSSMR480A01H501U", None, "wrong places"),
    ("letter in digit position not omocodia", "RSSMRA8AA01H501U", None, "omocodia"),
    ("month letter F does not exist", "RSSMRA80F01H501U", None, "month letter"),
    ("day 00", "RSSMRA80A00H501U", None, "day 00"),
    ("day 35 (neither man nor woman)", "RSSMRA80A35H501U", None, "day 35"),
    ("day 72", "RSSMRA80A72H501U", None, "day 72"),
    ("punctuation", "RSSMRA80A01H50-U", None, "wrong places"),
]


@pytest.mark.parametrize(("name", "value", "want", "want_error"), PERSON_CASES,
                         ids=[c[0] for c in PERSON_CASES])
def test_normalize_person(name: str, value: str, want: str | None, want_error: str | None) -> None:
    if want_error is None:
        assert normalize_person(value) == want
        assert is_person(value)
        return
    with pytest.raises(InvalidFiscalCode) as info:
        normalize_person(value)
    assert want_error in info.value.detail
    assert not is_person(value)
    # the detail goes to logs: never the full code
    cleaned = value.replace(" ", "").upper()
    if len(cleaned) >= 12:
        assert cleaned not in info.value.detail


def test_day_and_month_ranges_against_check_character() -> None:
    """Every real month letter and day 1-31 / 41-71 validates once the check char is right."""
    for month in "ABCDEHLMPRST":
        for day in [*range(1, 32), *range(41, 72)]:
            base = f"RSSMRA80{month}{day:02d}H501"
            assert is_person(base + check_character(base)), base


def test_every_wrong_check_character_is_refused() -> None:
    base = "RSSMRA80A01H501"
    right = check_character(base)
    for letter in "ABCDEFGHIJKLMNOPQRSTUVWXYZ":
        assert is_person(base + letter) == (letter == right)


def test_mask_hides_the_middle() -> None:
    assert mask("RSSMRA80A01H501U") == "RSSM********501U"
    assert mask("rssmra80a01h501u") == "RSSM********501U"
    assert mask("12345678903") == "12*******03"
    assert mask("ABC") == "***"
    assert mask("") == ""


def test_not_a_string() -> None:
    with pytest.raises(InvalidFiscalCode):
        normalize_person(None)  # type: ignore[arg-type]


COMPANY_CASES = [
    ("valid", "12345678903", "12345678903", None),
    ("valid real-world shape", "01114601006", "01114601006", None),
    ("country prefix stripped", "IT01114601006", "01114601006", None),
    ("spaces stripped", " 0111 4601 006 ", "01114601006", None),
    ("wrong check digit", "12345678901", None, "wrong check digit"),
    ("ten digits", "1234567890", None, "expected 11 digits"),
    ("letters", "1234567890A", None, "expected 11 digits"),
    ("a person's code is not a company's", "RSSMRA80A01H501U", None, "expected 11 digits"),
    ("all zeros", "00000000000", None, "all zeros"),
]


@pytest.mark.parametrize(("name", "value", "want", "want_error"), COMPANY_CASES,
                         ids=[c[0] for c in COMPANY_CASES])
def test_normalize_company(name: str, value: str, want: str | None,
                           want_error: str | None) -> None:
    if want_error is None:
        assert normalize_company(value) == want
        return
    with pytest.raises(InvalidFiscalCode) as info:
        normalize_company(value)
    assert want_error in info.value.detail
    assert "azienda" in info.value.message.it
    assert "company" in info.value.message.en


def test_company_check_digit_single_change_detected() -> None:
    """Changing any one digit of a valid number breaks the check (Luhn catches single errors)."""
    valid = "01114601006"
    for i in range(11):
        for d in "0123456789":
            if d == valid[i]:
                continue
            changed = valid[:i] + d + valid[i + 1:]
            with pytest.raises(InvalidFiscalCode):
                normalize_company(changed)


def test_decode_birth_date() -> None:
    assert decode_birth_date("RSSMRA80A01H501U") == date(1980, 1, 1)
    assert decode_birth_date("BNCLRA85M41Z404W") == date(1985, 8, 1)  # woman, day 41 -> 1
    assert decode_birth_date("RSSMRAULALMHRLMD") == date(1980, 1, 1)  # omocodia decoded
    base = "RSSMRA10A01H501"
    assert decode_birth_date(base + check_character(base), today=date(2024, 1, 1)) == \
        date(2010, 1, 1)
    assert decode_birth_date(base + check_character(base), today=date(2005, 1, 1)) == \
        date(1910, 1, 1)
    feb30 = "RSSMRA80B30H501"
    assert decode_birth_date(feb30 + check_character(feb30)) is None
