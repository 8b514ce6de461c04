"""The texts the PIN lifecycle sends through the outbox, rendered at delivery.

Each template gets the stored ``params`` (nothing secret) and the secrets opened by the
worker (a PIN half, a recovery code), and returns the message in Italian and English.
The secret is placed in the text only here, in memory, at delivery time.
"""

from __future__ import annotations

from typing import Any

from broker.outbox.model import Channel, Letter, Rendered

KIND_IT = {"request": "richiesta", "renewal": "rinnovo", "recovery": "ripristino",
           "reissue": "duplicato"}


def _greeting(params: dict[str, Any]) -> tuple[str, str]:
    name = params.get("given_name") or ""
    return (f"Gentile {name}".strip(), f"Dear {name}".strip())


def first_half(mid: int, channel: Channel, to: str, params: dict[str, Any],
               secrets: dict[str, str]) -> Rendered:
    """The first 8 characters of a new initial PIN (SMS, email or PEC)."""
    half, practice = secrets["half"], params["practice_number"]
    second_by = params.get("second_by", "letter")
    where_it = "per posta all'indirizzo di residenza" if second_by == "letter" else "per email"
    where_en = "by post to your home address" if second_by == "letter" else "by email"
    if channel is Channel.SMS:
        body = (f"PIN Istituto, pratica {practice}: prima parte {half}. La seconda parte "
                f"arriva {where_it}. / First part {half}; the second comes {where_en}.")
        return Rendered(mid, channel, to, "", body)
    hi_it, hi_en = _greeting(params)
    body = (
        f"{hi_it},\n\nper la pratica {practice} ({KIND_IT.get(params.get('kind', ''), '')}) "
        f"ecco la PRIMA PARTE del tuo PIN (8 caratteri):\n\n    {half}\n\n"
        f"La seconda parte (altri 8 caratteri) ti arriverà {where_it}. "
        "Per attivare il PIN usa la prima parte, il codice fiscale e la tessera sanitaria; "
        "al primo accesso inserisci i 16 caratteri e scegli il PIN di 8 caratteri.\n"
        "L'Istituto non ti chiederà mai il PIN per telefono o per email.\n\n"
        f"---\n{hi_en},\n\nfor practice {practice}, here is the FIRST PART of your PIN "
        f"(8 characters):\n\n    {half}\n\nThe second part (8 more characters) will reach "
        f"you {where_en}. Activate the PIN with the first part, your codice fiscale and "
        "your health card; at the first sign-in enter all 16 characters and choose your "
        "8-character PIN.\nThe Institute will never ask for your PIN by phone or email.\n")
    return Rendered(mid, channel, to, f"PIN - prima parte / first part ({practice})", body)


def second_half_email(mid: int, channel: Channel, to: str, params: dict[str, Any],
                      secrets: dict[str, str]) -> Rendered:
    """Recovery: the second 8 characters travel by email instead of post."""
    half, practice = secrets["half"], params["practice_number"]
    hi_it, hi_en = _greeting(params)
    body = (f"{hi_it},\n\nper il ripristino del PIN (pratica {practice}) ecco la SECONDA "
            f"PARTE:\n\n    {half}\n\nLa prima parte ti è stata inviata per SMS. Al primo "
            "accesso inserisci i 16 caratteri e scegli il nuovo PIN di 8 caratteri.\n\n"
            f"---\n{hi_en},\n\nfor your PIN recovery (practice {practice}) here is the SECOND "
            f"PART:\n\n    {half}\n\nThe first part was sent by text message. At the first "
            "sign-in enter all 16 characters and choose your new 8-character PIN.\n")
    return Rendered(mid, channel, to, f"PIN - seconda parte / second part ({practice})", body)


def letter(mid: int, channel: Channel, to: str, params: dict[str, Any],
           secrets: dict[str, str]) -> Rendered:
    """The postal half: the address block on record, the practice number, 8 characters."""
    half, practice = secrets["half"], params["practice_number"]
    hi_it, hi_en = _greeting(params)
    paragraphs = (
        f"{hi_it}, ecco la SECONDA PARTE del PIN che hai richiesto (pratica {practice}). "
        "La prima parte ti è stata inviata per SMS, email o PEC. Al primo accesso inserisci "
        "prima la prima parte e poi questa, 16 caratteri in tutto, e scegli il tuo PIN di "
        "8 caratteri. Conserva questa lettera in un luogo sicuro.",
        f"{hi_en}, here is the SECOND PART of the PIN you requested (practice {practice}). "
        "The first part was sent to you by text message, email or PEC. At the first "
        "sign-in enter the first part followed by this one, 16 characters in all, and "
        "choose your 8-character PIN. Keep this letter in a safe place.",
    )
    lines = tuple(to.split("\n"))
    body = "\n\n".join(paragraphs)
    return Rendered(mid, channel, to, f"PIN {practice}", body,
                    Letter(lines, practice, paragraphs, half))


def recovery_code(mid: int, channel: Channel, to: str, params: dict[str, Any],
                  secrets: dict[str, str]) -> Rendered:
    code = secrets["recovery"]
    hi_it, hi_en = _greeting(params)
    if channel is Channel.SMS:
        return Rendered(mid, channel, to, "", f"Codice di ripristino PIN / PIN recovery code: "
                                              f"{code} (valido/valid 30 min)")
    body = (f"{hi_it},\n\nil codice per il ripristino del PIN è:\n\n    {code}\n\nVale 30 "
            "minuti. Se non hai chiesto tu il ripristino, ignora questo messaggio.\n\n"
            f"---\n{hi_en},\n\nyour PIN recovery code is:\n\n    {code}\n\nIt is valid for "
            "30 minutes. If you did not ask for a recovery, ignore this message.\n")
    return Rendered(mid, channel, to, "Codice di ripristino PIN / PIN recovery code", body)


def notice(mid: int, channel: Channel, to: str, params: dict[str, Any],
           secrets: dict[str, str]) -> Rendered:
    """A plain notice (conversion decided, PIN revoked, letter reissued): no secret."""
    hi_it, hi_en = _greeting(params)
    body = f"{hi_it},\n\n{params['it']}\n\n---\n{hi_en},\n\n{params['en']}\n"
    return Rendered(mid, channel, to, params.get("subject", "PIN"), body)


TEMPLATES = {
    "pin.first_half": first_half,
    "pin.second_half_email": second_half_email,
    "pin.letter": letter,
    "pin.recovery_code": recovery_code,
    "pin.notice": notice,
}
