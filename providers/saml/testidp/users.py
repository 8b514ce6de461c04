"""The test IdP's documented users (demo and tests only; the passwords are public).

| username      | password | codice fiscale     | highest SPID level |
|---------------|----------|--------------------|--------------------|
| mario.rossi   | test     | RSSMRA80A01H501U   | SpidL2             |
| anna.bianchi  | test     | BNCNNA85M41F205Q   | SpidL3             |
| luigi.verdi   | test     | VRDLGU75C15L219D   | SpidL1 (refused: the IdP answers ErrorCode nr20) |
| giuseppe.verdi | test    | VRDGPP70C15Z110R   | SpidL2 (also an ordinario PIN: step-up) |
| mario.rossi.pro | test   | RSSMRA80A01H501U   | SpidL2, professional (natural person) |
| rossi.srl     | test     | RSSMRA80A01H501U   | SpidL2, professional for Rossi Servizi S.r.l. |

A request with ``spid:Purpose`` (Avviso SPID n.18 v2) is answered only by an identity of
a kind it admits; others get ``ErrorCode nr30``, as a personal identity without one.

When the test IdP plays CIE ID (``/test-idp-cie``), its users carry the four CIE
attributes (name, familyName, dateOfBirth, fiscalNumber):

| username      | password | codice fiscale     | CIE level |
|---------------|----------|--------------------|-----------|
| cie.rossi     | test     | RSSMRA80A01H501U   | SpidL3    |
| cie.bianchi   | test     | BNCNNA85M41F205Q   | SpidL2    |

When it plays FICEP, Italy's eIDAS node (``/test-idp-eidas``), its users are citizens
with the eID of another EU state: a person identifier (``spidCode``, ``CC/IT/...``) and
no codice fiscale; the level is the eIDAS one FICEP maps to SPID's:

| username      | password | person identifier    | level       | in the demo           |
|---------------|----------|----------------------|-------------|-----------------------|
| eidas.schmidt | test     | DE/IT/8472519036     | substantial | not linked            |
| eidas.bianchi | test     | FR/IT/18508914200123 | high        | linked to Laura (PIN) |
"""

from __future__ import annotations

from dataclasses import dataclass, field

L1 = "https://www.spid.gov.it/SpidL1"
L2 = "https://www.spid.gov.it/SpidL2"
L3 = "https://www.spid.gov.it/SpidL3"
LEVEL = {L1: 1, L2: 2, L3: 3}


# Avviso SPID n.18 v2: the kinds of identity each spid:Purpose admits. Kind 1: a natural
# person's own; 2: a legal person's; 3: a natural person's for professional use; 4: a
# natural person's for professional use on behalf of a legal person.
PURPOSE_KINDS: dict[str | None, frozenset[int]] = {
    None: frozenset({1, 3}), "P": frozenset({3, 4}), "LP": frozenset({2, 4}),
    "PG": frozenset({4}), "PF": frozenset({3}), "PX": frozenset({2, 3, 4}),
}


@dataclass(frozen=True)
class TestUser:
    __test__ = False  # not a pytest class

    username: str
    password: str
    max_level: int
    attributes: dict[str, str] = field(default_factory=dict)
    kind: int = 1  # the kind of SPID identity (PURPOSE_KINDS)

    def serves(self, purpose: str | None) -> bool:
        """Whether this identity answers a request with this ``spid:Purpose``."""
        return self.kind in PURPOSE_KINDS.get(purpose, frozenset())

    @property
    def fiscal_code(self) -> str:
        return self.attributes["fiscalNumber"].removeprefix("TINIT-")


DEFAULT_USERS: tuple[TestUser, ...] = (
    TestUser("mario.rossi", "test", 2, {
        "spidCode": "VARC0000000001", "name": "Mario", "familyName": "Rossi",
        "fiscalNumber": "TINIT-RSSMRA80A01H501U", "email": "mario.rossi@example.it",
        "dateOfBirth": "1980-01-01", "placeOfBirth": "H501",
        "address": "Via del Corso 1 00186 Roma RM", "mobilePhone": "+393331234567",
        "gender": "M", "countyOfBirth": "RM"}),
    TestUser("anna.bianchi", "test", 3, {
        "spidCode": "VARC0000000002", "name": "Anna", "familyName": "Bianchi",
        "fiscalNumber": "TINIT-BNCNNA85M41F205Q", "email": "anna.bianchi@example.it",
        "dateOfBirth": "1985-08-01", "placeOfBirth": "F205",
        "address": "Corso Buenos Aires 10 20124 Milano MI", "mobilePhone": "+393471234567",
        "gender": "F", "countyOfBirth": "MI"}),
    TestUser("luigi.verdi", "test", 1, {
        "spidCode": "VARC0000000003", "name": "Luigi", "familyName": "Verdi",
        "fiscalNumber": "TINIT-VRDLGU75C15L219D", "email": "luigi.verdi@example.it",
        "dateOfBirth": "1975-03-15", "placeOfBirth": "L219",
        "address": "Via Roma 1 10121 Torino TO", "mobilePhone": "+393391234567",
        "gender": "M", "countyOfBirth": "TO"}),
    TestUser("mario.rossi.pro", "test", 2, {
        "spidCode": "VARC0000000005", "name": "Mario", "familyName": "Rossi",
        "fiscalNumber": "TINIT-RSSMRA80A01H501U", "email": "studio.rossi@example.it",
        "dateOfBirth": "1980-01-01"}, kind=3),
    TestUser("rossi.srl", "test", 2, {
        "spidCode": "VARC0000000006", "name": "Mario", "familyName": "Rossi",
        "fiscalNumber": "TINIT-RSSMRA80A01H501U", "companyName": "Rossi Servizi S.r.l.",
        "companyFiscalNumber": "TINIT-01234567897", "ivaCode": "VATIT-01234567897",
        "email": "amministrazione@rossi-servizi.example.it"}, kind=4),
    TestUser("giuseppe.verdi", "test", 2, {
        "spidCode": "VARC0000000004", "name": "Giuseppe", "familyName": "Verdi",
        "fiscalNumber": "TINIT-VRDGPP70C15Z110R", "email": "giuseppe.verdi@example.org",
        "dateOfBirth": "1970-03-15", "placeOfBirth": "Z110",
        "address": "Rue de Rivoli 1 75001 Paris", "mobilePhone": "+33612345678",
        "gender": "M", "countyOfBirth": "EE"}),
)


EIDAS_USERS: tuple[TestUser, ...] = (
    TestUser("eidas.schmidt", "test", 2, {
        "spidCode": "DE/IT/8472519036", "name": "Anke", "familyName": "Schmidt",
        "dateOfBirth": "1979-06-21", "placeOfBirth": "Hamburg", "gender": "F",
        "address": "Mittelweg 12 20148 Hamburg DE"}),
    TestUser("eidas.bianchi", "test", 3, {
        "spidCode": "FR/IT/18508914200123", "name": "Laura", "familyName": "Bianchi",
        "dateOfBirth": "1985-08-01", "placeOfBirth": "New York", "gender": "F",
        "address": "12 rue de la Paix 75002 Paris FR"}),
)


CIE_USERS: tuple[TestUser, ...] = (
    TestUser("cie.rossi", "test", 3, {
        "name": "Mario", "familyName": "Rossi", "dateOfBirth": "1980-01-01",
        "fiscalNumber": "TINIT-RSSMRA80A01H501U"}),
    TestUser("cie.bianchi", "test", 2, {
        "name": "Anna", "familyName": "Bianchi", "dateOfBirth": "1985-08-01",
        "fiscalNumber": "TINIT-BNCNNA85M41F205Q"}),
)
