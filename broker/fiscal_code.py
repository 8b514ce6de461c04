"""Validation of Italian codici fiscali: the 16-character personal one and the 11-digit company one.

Pure functions, no I/O. A person's code is checked position by position (with the
omocodia letters the Agenzia delle Entrate substitutes for digits when two people would
otherwise share a code) and by its check character; a company's code (= partita IVA)
by its Luhn-like check digit. Errors never carry the full code: they mask it, because
error details end up in logs.
"""

from __future__ import annotations

import re
from datetime import date

from broker.errors import InvalidFiscalCode, Text

# The seven positions that hold digits (year, day, municipality number); omocodia
# replaces them, right to left, with these letters standing for 0..9.
DIGIT_POSITIONS = (6, 7, 9, 10, 12, 13, 14)
OMOCODIA = "LMNPQRSTUV"
MONTHS = "ABCDEHLMPRST"  # January .. December

_OMO_DECODE = {letter: str(i) for i, letter in enumerate(OMOCODIA)}

# Values of characters in odd positions (1st, 3rd, ... counting from 1) for the check character.
_ODD = dict(
    zip(
        "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ",
        (1, 0, 5, 7, 9, 13, 15, 17, 19, 21,
         1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16,
         10, 22, 25, 24, 23),
        strict=True,
    )
)
_EVEN = {**{str(d): d for d in range(10)}, **{chr(65 + i): i for i in range(26)}}

_DIGIT_OR_OMO = f"[0-9{OMOCODIA}]"
_SHAPE = re.compile(
    rf"^[A-Z]{{6}}{_DIGIT_OR_OMO}{{2}}[A-Z]{_DIGIT_OR_OMO}{{2}}[A-Z]{_DIGIT_OR_OMO}{{3}}[A-Z]$"
)
_LOOSE_SHAPE = re.compile(r"^[A-Z]{6}[0-9A-Z]{2}[A-Z][0-9A-Z]{2}[A-Z][0-9A-Z]{3}[A-Z]$")

COMPANY_MESSAGE = Text(
    "Il codice fiscale dell'azienda non è valido: deve avere 11 cifre e la cifra di controllo "
    "corretta.",
    "The company's codice fiscale (VAT number) is not valid: it must have 11 digits and a "
    "correct check digit.",
)


def mask(cf: str) -> str:
    """The code with its middle hidden (``RSSM********501U``), safe for logs and error details."""
    value = (cf or "").strip().upper()
    if len(value) >= 12:
        return value[:4] + "*" * (len(value) - 8) + value[-4:]
    if len(value) >= 6:
        return value[:2] + "*" * (len(value) - 4) + value[-2:]
    return "*" * len(value)


def looks_like_person(value: str) -> bool:
    """True when ``value`` has the shape of a personal code (used to mask values in traces)."""
    return bool(_LOOSE_SHAPE.match(value.strip().upper())) if isinstance(value, str) else False


def check_character(first15: str) -> str:
    """The check character for the first 15 characters of a personal code."""
    total = 0
    for i, ch in enumerate(first15):
        total += _ODD[ch] if i % 2 == 0 else _EVEN[ch]
    return chr(65 + total % 26)


def _digits(cf: str) -> str:
    """The code with omocodia letters in digit positions turned back into digits."""
    chars = list(cf)
    for pos in DIGIT_POSITIONS:
        chars[pos] = _OMO_DECODE.get(chars[pos], chars[pos])
    return "".join(chars)


def normalize_person(value: str) -> str:
    """Strip, uppercase and validate a 16-character codice fiscale; return it normalised.

    Raises ``InvalidFiscalCode`` whose detail says what is wrong (with the code masked).
    Omocodia variants are valid and are returned as given (they are distinct codes).
    """
    if not isinstance(value, str):
        raise InvalidFiscalCode("fiscal code: not a string")
    cf = re.sub(r"\s+", "", value).upper()
    shown = mask(cf)
    if len(cf) != 16:
        raise InvalidFiscalCode(f"fiscal code {shown}: {len(cf)} characters, expected 16")
    if not _LOOSE_SHAPE.match(cf):
        raise InvalidFiscalCode(
            f"fiscal code {shown}: letters and digits in the wrong places "
            "(expected 6 letters, 2 digits, letter, 2 digits, letter, 3 digits, letter)"
        )
    if not _SHAPE.match(cf):
        raise InvalidFiscalCode(
            f"fiscal code {shown}: a digit position holds a letter that is not an omocodia "
            f"substitute ({OMOCODIA})"
        )
    if cf[8] not in MONTHS:
        raise InvalidFiscalCode(
            f"fiscal code {shown}: month letter {cf[8]!r} is not one of {MONTHS}"
        )
    plain = _digits(cf)
    day = int(plain[9:11])
    if not (1 <= day <= 31 or 41 <= day <= 71):
        raise InvalidFiscalCode(f"fiscal code {shown}: day {day:02d} is not 01-31 or 41-71")
    expected = check_character(cf[:15])
    if cf[15] != expected:
        raise InvalidFiscalCode(f"fiscal code {shown}: wrong check character")
    return cf


def is_person(value: str) -> bool:
    """True when ``value`` is a valid 16-character personal codice fiscale."""
    try:
        normalize_person(value)
    except InvalidFiscalCode:
        return False
    return True


def normalize_company(value: str) -> str:
    """Strip and validate an 11-digit company codice fiscale / partita IVA; return it.

    Raises ``InvalidFiscalCode`` carrying a company-specific citizen message.
    """
    if not isinstance(value, str):
        raise InvalidFiscalCode("company fiscal code: not a string", message=COMPANY_MESSAGE)
    code = re.sub(r"\s+", "", value)
    if code.upper().startswith("IT") and len(code) == 13:
        code = code[2:]  # VAT numbers are often written with the country prefix
    if len(code) != 11 or not code.isdigit():
        raise InvalidFiscalCode(
            f"company fiscal code {mask(code)}: expected 11 digits", message=COMPANY_MESSAGE
        )
    if code == "0" * 11:
        raise InvalidFiscalCode("company fiscal code: all zeros", message=COMPANY_MESSAGE)
    total = 0
    for i, ch in enumerate(code[:10]):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    if (10 - total % 10) % 10 != int(code[10]):
        raise InvalidFiscalCode(
            f"company fiscal code {mask(code)}: wrong check digit", message=COMPANY_MESSAGE
        )
    return code


def decode_birth_date(cf: str, today: date | None = None) -> date | None:
    """Birth date encoded in a valid personal code, or None if it is not a real date.

    The code holds only two digits of the year: it is read as the latest year not after
    ``today`` (pass the injected clock's date); without ``today``, years 00-29 are 2000s.
    """
    plain = _digits(normalize_person(cf))
    yy = int(plain[6:8])
    month = MONTHS.index(plain[8]) + 1
    day = int(plain[9:11])
    if day > 40:
        day -= 40
    if today is not None:
        year = 2000 + yy if 2000 + yy <= today.year else 1900 + yy
    else:
        year = 2000 + yy if yy < 30 else 1900 + yy
    try:
        return date(year, month, day)
    except ValueError:
        return None


def is_female(cf: str) -> bool:
    """Women have 40 added to the day of birth."""
    return int(_digits(normalize_person(cf))[9:11]) > 40
