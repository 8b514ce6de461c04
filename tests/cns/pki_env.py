"""Test PKI for CNS: a root, an intermediate, a stranger CA, a TLS server CA, and cards.

Each card is written as ``<name>.pem`` + ``<name>.key`` in a temp folder, ready for an
``ssl.SSLContext.load_cert_chain`` (what httpx presents to nginx). CRLs for the root
(covering the intermediate) and the intermediate (covering the revoked card) are written
too, so ``revocation: require`` can be met.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from providers.cns import pki

MARIO = "RSSMRA80A01H501U"  # valid check character
ANNA = "BNCNNA75C45F205O"
CN_FORM_CF = "VRDGPP70C15Z110R"


@dataclass
class Card:
    name: str
    cert: Path
    key: Path
    issued: pki.Issued


@dataclass
class CnsPki:
    dir: Path
    now: datetime
    root: pki.Issued
    inter: pki.Issued
    stranger: pki.Issued  # a CA the broker does not trust
    tls_ca: pki.Issued  # issues nginx's server certificate
    ca_bundle: Path
    intermediates: Path
    crl_dir: Path
    tls_ca_pem: Path
    server_cert: Path
    server_key: Path
    cards: dict[str, Card] = field(default_factory=dict)

    def card(self, name: str, subject, issuer: pki.Issued | None = None, **kw) -> Card:
        issued = pki.make_client(subject, issuer or self.inter, self.now, **kw)
        card = Card(name, self.dir / f"{name}.pem", self.dir / f"{name}.key", issued)
        issued.write(card.cert, card.key)
        self.cards[name] = card
        return card

    def write_crls(self, revoked: list[pki.Issued], *, next_update=timedelta(days=7)) -> None:
        """CRL of the intermediate listing ``revoked``; CRL of the root listing nothing."""
        (self.crl_dir / "inter.crl").write_bytes(
            pki.make_crl(self.inter, [c.cert for c in revoked], self.now,
                         next_update=next_update))
        (self.crl_dir / "root.crl").write_bytes(pki.make_crl(self.root, [], self.now))


def build_pki(folder: Path, now: datetime) -> CnsPki:
    folder.mkdir(parents=True, exist_ok=True)
    root = pki.make_ca("CNS Test Root CA", now)
    inter = pki.make_ca("CNS Test Issuing CA", now, issuer=root, path_length=0)
    stranger = pki.make_ca("Not A CNS CA", now)
    tls_ca = pki.make_ca("Test TLS CA", now)
    server = pki.make_server("127.0.0.1", tls_ca, now)
    env = CnsPki(
        dir=folder, now=now, root=root, inter=inter, stranger=stranger, tls_ca=tls_ca,
        ca_bundle=folder / "cns-ca.pem", intermediates=folder / "cns-intermediates.pem",
        crl_dir=folder / "crl", tls_ca_pem=folder / "tls-ca.pem",
        server_cert=folder / "server.pem", server_key=folder / "server.key")
    root.write(env.ca_bundle)
    inter.write(env.intermediates)
    tls_ca.write(env.tls_ca_pem)
    server.write(env.server_cert, env.server_key)
    env.crl_dir.mkdir(exist_ok=True)
    return env


def standard_cards(env: CnsPki) -> None:
    """The cards the flow tests log in with."""
    now = env.now
    env.card("valid", pki.cns_subject(MARIO, "Mario", "Rossi"))
    env.card("valid_cn", pki.cns_subject(CN_FORM_CF, "Giuseppe", "Verdi", form="cn"))
    env.card("expired", pki.cns_subject(ANNA, "Anna", "Bianchi"),
             not_before=now - timedelta(days=800), not_after=now - timedelta(days=1))
    env.card("not_yet_valid", pki.cns_subject(ANNA, "Anna", "Bianchi"),
             not_before=now + timedelta(days=2), not_after=now + timedelta(days=400))
    revoked = env.card("revoked", pki.cns_subject(ANNA, "Anna", "Bianchi"))
    env.card("wrong_ca", pki.cns_subject(MARIO, "Mario", "Rossi"), issuer=env.stranger)
    env.card("no_cf", pki.cns_subject(None, "Mario", "Rossi"))
    env.card("bad_cf", pki.cns_subject("RSSMRA80A01H501X", "Mario", "Rossi"))
    env.write_crls([revoked.issued])
