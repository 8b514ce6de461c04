"""CNS certificate checks without the web: subject, path, CRL and OCSP, table-driven.

Certificates are generated per test with ``providers.cns.pki``; the verifier is the
production one (``CardVerifier``), the OCSP responder a real HTTP server on 127.0.0.1.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from broker.errors import ConfigError
from providers.cns import pki
from providers.cns.chain import ChainVerifier, load_pem_bundle
from providers.cns.errors import (
    CnsError,
    CnsExpired,
    CnsMalformedCertificate,
    CnsNoCertificate,
    CnsNoFiscalCode,
    CnsNotYetValid,
    CnsRevocationUnknown,
    CnsRevoked,
    CnsUnknownIssuer,
)
from providers.cns.revocation import CrlSet, OcspChecker, Status
from providers.cns.subject import holder_of
from providers.cns.verify import CardVerifier, parse_escaped_cert
from tests.cns.ocsp_responder import OcspResponder
from tests.cns.pki_env import ANNA, CN_FORM_CF, MARIO, CnsPki, build_pki

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


@pytest.fixture
def env(tmp_path: Path) -> CnsPki:
    return build_pki(tmp_path, NOW)


def verifier(env: CnsPki, *, require: bool = True, ocsp: bool = False,
             intermediates: bool = True) -> CardVerifier:
    chain = ChainVerifier([env.root.cert], [env.inter.cert] if intermediates else [])
    return CardVerifier(chain, CrlSet([env.crl_dir]), OcspChecker(2.0) if ocsp else None,
                        require_revocation=require)


def card(env: CnsPki, cf: str | None = MARIO, **kw) -> x509.Certificate:
    return pki.make_client(pki.cns_subject(cf, "Mario", "Rossi"), env.inter, NOW, **kw).cert


# -- subject -------------------------------------------------------------------------

def _subject(*attrs: tuple[x509.ObjectIdentifier, str]) -> x509.Name:
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in attrs])


@pytest.mark.parametrize(("subject", "want", "want_error"), [
    (pki.cns_subject(MARIO, "Mario", "Rossi"), MARIO, None),
    (pki.cns_subject(CN_FORM_CF, "G", "V", form="cn"), CN_FORM_CF, None),
    (_subject((NameOID.SERIAL_NUMBER, f"TINIT-{ANNA}")), ANNA, None),
    (_subject((NameOID.SERIAL_NUMBER, f"it:{MARIO.lower()}")), MARIO, None),
    # both forms naming the same person is fine, different people is not
    (_subject((NameOID.SERIAL_NUMBER, f"IT:{MARIO}"), (NameOID.COMMON_NAME, f"{MARIO}/1.x")),
     MARIO, None),
    (_subject((NameOID.SERIAL_NUMBER, f"IT:{MARIO}"), (NameOID.COMMON_NAME, f"{ANNA}/1.x")),
     None, CnsNoFiscalCode),
    (pki.cns_subject(None, "Mario", "Rossi"), None, CnsNoFiscalCode),
    (pki.cns_subject("RSSMRA80A01H501X", "Mario", "Rossi"), None, CnsNoFiscalCode),
    (_subject((NameOID.SERIAL_NUMBER, "12345678")), None, CnsNoFiscalCode),
    (_subject((NameOID.COMMON_NAME, "ROSSI MARIO")), None, CnsNoFiscalCode),
])
def test_holder_from_subject(env: CnsPki, subject: x509.Name, want: str | None,
                             want_error: type[CnsError] | None) -> None:
    cert = pki.make_client(subject, env.inter, NOW).cert
    if want_error:
        with pytest.raises(want_error) as info:
            holder_of(cert)
        assert MARIO not in info.value.detail and ANNA not in info.value.detail  # masked
    else:
        assert holder_of(cert).fiscal_code == want


def test_names_come_from_given_name_and_surname(env: CnsPki) -> None:
    holder = holder_of(card(env))
    assert (holder.given_name, holder.family_name) == ("Mario", "Rossi")


# -- the header nginx sends ----------------------------------------------------------

def test_escaped_header_round_trip(env: CnsPki) -> None:
    from urllib.parse import quote

    cert = card(env)
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    assert parse_escaped_cert(quote(pem, safe="")) == cert


@pytest.mark.parametrize(("value", "want_error"), [
    (None, CnsNoCertificate), ("", CnsNoCertificate), ("-", CnsNoCertificate),
    ("hello", CnsMalformedCertificate),
    ("-----BEGIN%20CERTIFICATE-----%0AAAAA%0A-----END%20CERTIFICATE-----",
     CnsMalformedCertificate),
    ("A" * 20000, CnsMalformedCertificate),
])
def test_bad_headers(value: str | None, want_error: type[Exception]) -> None:
    with pytest.raises(want_error):
        parse_escaped_cert(value)


# -- path and dates (the injected time, never the wall clock) ------------------------

def test_valid_card_with_current_crls(env: CnsPki) -> None:
    env.write_crls([])
    result = verifier(env).verify(card(env), NOW)
    assert result.holder.fiscal_code == MARIO
    assert [c.subject for c in result.chain] == [
        result.chain[0].subject, env.inter.cert.subject, env.root.cert.subject]


@pytest.mark.parametrize(("at", "want_error"), [
    (NOW + timedelta(days=2000), CnsExpired),  # the card's 3 years have passed
    (NOW - timedelta(days=3), CnsNotYetValid),  # before the card was issued
])
def test_dates_are_judged_at_the_given_time(env: CnsPki, at: datetime,
                                            want_error: type[Exception]) -> None:
    env.write_crls([])
    with pytest.raises(want_error):
        verifier(env).verify(card(env), at)


def test_expired_intermediate_is_expired(env: CnsPki) -> None:
    old_inter = pki.make_ca("Old Issuing CA", NOW, issuer=env.root, path_length=0,
                            not_after=NOW - timedelta(days=1),
                            not_before=NOW - timedelta(days=900))
    leaf = pki.make_client(pki.cns_subject(MARIO, "M", "R"), old_inter, NOW).cert
    chain = ChainVerifier([env.root.cert], [old_inter.cert])
    with pytest.raises(CnsExpired):
        chain.verify(leaf, NOW)


@pytest.mark.parametrize("case", ["stranger", "self_signed", "no_intermediate", "ca_as_leaf"])
def test_untrusted_paths(env: CnsPki, case: str) -> None:
    env.write_crls([])
    subject = pki.cns_subject(MARIO, "Mario", "Rossi")
    if case == "stranger":
        leaf = pki.make_client(subject, env.stranger, NOW).cert
    elif case == "self_signed":
        key = pki.new_key()
        leaf = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                .public_key(key.public_key()).serial_number(7)
                .not_valid_before(NOW - timedelta(days=1))
                .not_valid_after(NOW + timedelta(days=1))
                .sign(key, hashes.SHA256()))
    elif case == "ca_as_leaf":  # the issuing CA's own certificate is not a card
        leaf = env.inter.cert
    else:
        leaf = card(env)
    with pytest.raises(CnsUnknownIssuer):
        verifier(env, intermediates=case != "no_intermediate").verify(leaf, NOW)


def test_signature_by_the_wrong_key_is_refused(env: CnsPki) -> None:
    """A certificate naming our issuing CA but signed by another key."""
    env.write_crls([])
    impostor = pki.Issued(env.inter.cert, pki.new_key())
    forged = pki.make_client(pki.cns_subject(MARIO, "M", "R"), impostor, NOW).cert
    with pytest.raises(CnsUnknownIssuer):
        verifier(env).verify(forged, NOW)


def test_missing_ca_bundle_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        load_pem_bundle(tmp_path / "nope.pem", "ca_bundle")
    (tmp_path / "empty.pem").write_text("nothing here")
    with pytest.raises(ConfigError):
        load_pem_bundle(tmp_path / "empty.pem", "ca_bundle")


# -- CRLs ----------------------------------------------------------------------------

def test_revoked_card_in_crl(env: CnsPki) -> None:
    leaf = pki.make_client(pki.cns_subject(MARIO, "M", "R"), env.inter, NOW)
    env.write_crls([leaf])
    with pytest.raises(CnsRevoked):
        verifier(env).verify(leaf.cert, NOW)


def test_revoked_intermediate_in_root_crl(env: CnsPki) -> None:
    env.write_crls([])
    (env.crl_dir / "root.crl").write_bytes(pki.make_crl(env.root, [env.inter.cert], NOW))
    with pytest.raises(CnsRevoked):
        verifier(env).verify(card(env), NOW)


def test_no_crl_is_unknown_and_refused_when_required(env: CnsPki) -> None:
    with pytest.raises(CnsRevocationUnknown):
        verifier(env).verify(card(env), NOW)
    assert verifier(env, require=False).verify(card(env), NOW).holder.fiscal_code == MARIO


def test_stale_crl_does_not_vouch_but_still_revokes(env: CnsPki) -> None:
    leaf = pki.make_client(pki.cns_subject(MARIO, "M", "R"), env.inter, NOW)
    env.write_crls([leaf], next_update=timedelta(days=1))
    later = NOW + timedelta(days=3)
    with pytest.raises(CnsRevoked):
        verifier(env).verify(leaf.cert, later)
    env.write_crls([], next_update=timedelta(days=1))
    with pytest.raises(CnsRevocationUnknown):
        verifier(env).verify(card(env), later)


def test_crl_signed_by_someone_else_is_ignored(env: CnsPki) -> None:
    env.write_crls([])
    impostor = pki.Issued(env.inter.cert, pki.new_key())
    (env.crl_dir / "inter.crl").write_bytes(pki.make_crl(impostor, [], NOW))
    crls = CrlSet([env.crl_dir])
    assert crls.status(card(env), env.inter.cert, NOW) is Status.UNKNOWN


def test_crl_files_are_reread_when_they_change(env: CnsPki) -> None:
    leaf = pki.make_client(pki.cns_subject(MARIO, "M", "R"), env.inter, NOW)
    env.write_crls([])
    check = verifier(env)
    assert check.verify(leaf.cert, NOW).holder.fiscal_code == MARIO
    env.write_crls([leaf])  # the nightly download lists it now; no restart
    stat = (env.crl_dir / "inter.crl").stat()
    os.utime(env.crl_dir / "inter.crl", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    with pytest.raises(CnsRevoked):
        check.verify(leaf.cert, NOW)


def test_der_crl_files_are_read(env: CnsPki) -> None:
    leaf = pki.make_client(pki.cns_subject(MARIO, "M", "R"), env.inter, NOW)
    env.write_crls([])
    (env.crl_dir / "inter.crl").write_bytes(pki.make_crl(
        env.inter, [leaf.cert], NOW, encoding=serialization.Encoding.DER))
    with pytest.raises(CnsRevoked):
        verifier(env).verify(leaf.cert, NOW)


# -- OCSP ----------------------------------------------------------------------------

@pytest.fixture
def responder(env: CnsPki) -> Iterator[OcspResponder]:
    signer = pki.make_ocsp_signer(env.inter, NOW)
    server = OcspResponder(env.inter, signer, NOW).start()
    yield server
    server.stop()


def _root_crl_only(env: CnsPki) -> None:
    (env.crl_dir / "root.crl").write_bytes(pki.make_crl(env.root, [], NOW))


def test_ocsp_good_is_enough_without_a_crl(env: CnsPki, responder: OcspResponder) -> None:
    _root_crl_only(env)
    leaf = card(env, ocsp_url=responder.url)
    assert verifier(env, ocsp=True).verify(leaf, NOW).holder.fiscal_code == MARIO
    assert responder.requests == 1


def test_ocsp_revoked(env: CnsPki, responder: OcspResponder) -> None:
    env.write_crls([])  # the CRL does not know yet; the responder does
    leaf = card(env, ocsp_url=responder.url)
    responder.revoked.add(leaf.serial_number)
    with pytest.raises(CnsRevoked):
        verifier(env, ocsp=True).verify(leaf, NOW)


def test_ocsp_is_not_asked_when_disabled(env: CnsPki, responder: OcspResponder) -> None:
    _root_crl_only(env)
    with pytest.raises(CnsRevocationUnknown):
        verifier(env, ocsp=False).verify(card(env, ocsp_url=responder.url), NOW)
    assert responder.requests == 0


@pytest.mark.parametrize("signer", ["stranger", "inter_issued_without_eku", "issuer"])
def test_ocsp_signer_must_be_the_issuer_or_its_responder(env: CnsPki, signer: str) -> None:
    _root_crl_only(env)
    if signer == "stranger":
        key = pki.make_ocsp_signer(env.stranger, NOW)
    elif signer == "inter_issued_without_eku":
        key = pki.make_client(pki.cns_subject(MARIO, "M", "R"), env.inter, NOW)
    else:
        key = env.inter
    server = OcspResponder(env.inter, key, NOW).start()
    try:
        leaf = card(env, ocsp_url=server.url)
        check = verifier(env, ocsp=True)
        if signer == "issuer":
            assert check.verify(leaf, NOW).holder.fiscal_code == MARIO
        else:
            with pytest.raises(CnsRevocationUnknown):
                check.verify(leaf, NOW)
    finally:
        server.stop()


def test_ocsp_unreachable_is_unknown(env: CnsPki) -> None:
    _root_crl_only(env)
    leaf = card(env, ocsp_url="http://127.0.0.1:9/ocsp")
    with pytest.raises(CnsRevocationUnknown):
        verifier(env, ocsp=True).verify(leaf, NOW)


def test_stale_ocsp_answer_is_unknown(env: CnsPki) -> None:
    _root_crl_only(env)
    signer = pki.make_ocsp_signer(env.inter, NOW)
    server = OcspResponder(env.inter, signer, NOW - timedelta(days=2)).start()
    try:
        with pytest.raises(CnsRevocationUnknown):
            verifier(env, ocsp=True).verify(card(env, ocsp_url=server.url), NOW)
    finally:
        server.stop()
