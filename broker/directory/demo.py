"""Demo roles for the demo PIN users (README): seeded once into the embedded directory.

- Laura Bianchi (BNCLRA85M41Z404W, PIN dispositivo): commercialista for two companies,
  and operator of Roma (H501, valid convenzione) with ISEE acquisizione e consultazione
  and variazioni anagrafiche;
- Giuseppe Verdi (VRDGPP70C15Z110R, PIN ordinario): delegate of Mario Rossi
  (RSSMRA80A01H501U, circular 127/2021), and operator of Milano (F205), whose
  convenzione expired in 2022, so that role is never granted (``explain`` shows why);
- Laura also holds an expired delega (SC65) that the policy ignores.
"""

from __future__ import annotations

from datetime import date, datetime

from broker.directory.base import Directory
from broker.directory.model import Comune, Convenzione, Delega, Delegation

LAURA, GIUSEPPE, MARIO = "BNCLRA85M41Z404W", "VRDGPP70C15Z110R", "RSSMRA80A01H501U"
COMPANY_A, COMPANY_B, COMPANY_OLD = "00743110157", "01234567897", "12345678903"
ROMA = Comune(code="H501", name="Roma", convenzione=Convenzione(
    valid_from=date(2020, 1, 1), valid_until=date(2035, 12, 31), status="active"))
MILANO = Comune(code="F205", name="Milano", convenzione=Convenzione(
    valid_from=date(2019, 1, 1), valid_until=date(2022, 12, 31), status="active"))
DEMO_REASON = "demo: richiesta scritta del legale rappresentante"


def seed_demo_directory(directory: Directory, now: datetime) -> bool:
    """Seed the demo roles unless the directory already knows any comune (idempotent)."""
    if directory.comune(ROMA.code) is not None:
        return False
    directory.put_comune(ROMA)
    directory.put_comune(MILANO)
    directory.add_delega(LAURA, "commercialista", Delega(
        company_cf=COMPANY_A, company_name="Alfa Costruzioni S.r.l.",
        valid_from=date(2023, 1, 1), valid_until=date(2035, 12, 31), form="PEC"))
    directory.add_delega(LAURA, "commercialista", Delega(
        company_cf=COMPANY_B, company_name="Beta Servizi S.p.A.",
        valid_from=date(2023, 6, 1), valid_until=None, form="PEC"))
    directory.add_delega(LAURA, "azienda_titolare", Delega(
        company_cf=COMPANY_OLD, company_name="Gamma (cessata)",
        valid_from=date(2015, 1, 1), valid_until=date(2020, 12, 31), form="SC65"))
    directory.grant(LAURA, ROMA.code, ("isee.acquisizione", "variazioni_anagrafiche"),
                    by="demo-seed", reason=DEMO_REASON, now=now)
    directory.grant(GIUSEPPE, MILANO.code, ("isee.consultazione",), by="demo-seed",
                    reason=DEMO_REASON, now=now)
    directory.add_delegation(Delegation(
        delegator_cf=MARIO, delegate_cf=GIUSEPPE, valid_from=date(2024, 1, 1),
        valid_until=date(2035, 12, 31), scope="all"))
    return True
