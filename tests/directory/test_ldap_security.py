"""The LDAP backend against a real slapd: TLS verified, a bind account that can only read,
anonymous sees nothing, and a directory that is down fails closed only where needed."""

from __future__ import annotations

import ssl

import pytest
from ldap3 import MODIFY_REPLACE, Connection, Server, Tls
from ldap3.core.exceptions import LDAPException

from broker.config import DirectorySettings
from broker.directory.base import DirectoryUnavailable
from broker.directory.ldap import LdapDirectory
from tests.directory.conftest import ldap_directory
from tests.directory.slapd_env import READER_DN
from tests.oidc.oidc_helpers import (
    GIUSEPPE,
    LAURA,
    PIN_GIUSEPPE,
    PIN_LAURA,
    Browser,
    code_from,
    demo_rp,
)
from tests.roles.roles_env import isee_rp

pytestmark = pytest.mark.integration
LAURA_DELEGA = "cn=BNCLRA85M41Z404W-commercialista-00743110157,ou=deleghe,dc=varco,dc=example"


def _conn(slapd, user=None, password=None) -> Connection:
    server = Server(slapd.url, use_ssl=True, tls=Tls(
        validate=ssl.CERT_REQUIRED, ca_certs_file=str(slapd.ca_file)))
    return Connection(server, user=user, password=password, auto_bind=True)


def test_reader_can_read_but_not_write(slapd):
    conn = _conn(slapd, READER_DN, slapd.reader_password)
    assert conn.search("dc=varco,dc=example", "(objectClass=varcoDelega)")
    assert len(conn.entries) >= 3
    ok = conn.modify(LAURA_DELEGA, {"varcoValidUntil": [(MODIFY_REPLACE, ["2099-12-31"])]})
    assert not ok and conn.result["description"] == "insufficientAccessRights"
    assert not conn.delete(LAURA_DELEGA)
    conn.unbind()
    assert ldap_directory(slapd).facts(LAURA).intermediary  # still there, unchanged


def test_anonymous_and_wrong_password_see_nothing(slapd):
    anon = _conn(slapd)
    anon.search("dc=varco,dc=example", "(objectClass=*)")
    assert anon.entries == []
    anon.unbind()
    with pytest.raises(LDAPException):
        _conn(slapd, READER_DN, "wrong")
    wrong = LdapDirectory(slapd.url, "dc=varco,dc=example", bind_dn=READER_DN,
                          password="wrong", ca_file=str(slapd.ca_file), timeout=2)
    with pytest.raises(DirectoryUnavailable):
        wrong.facts(LAURA)


def test_untrusted_certificate_is_refused(slapd, tmp_path):
    other_ca = tmp_path / "other.pem"
    other_ca.write_bytes(_other_ca())
    untrusting = LdapDirectory(slapd.url, "dc=varco,dc=example", bind_dn=READER_DN,
                               password=slapd.reader_password, ca_file=str(other_ca), timeout=2)
    with pytest.raises(DirectoryUnavailable):
        untrusting.facts(LAURA)


def test_start_tls_on_ldap_url_reads_with_the_certificate_checked(slapd):
    directory = LdapDirectory(slapd.plain_url, "dc=varco,dc=example", bind_dn=READER_DN,
                              password=slapd.reader_password, ca_file=str(slapd.ca_file),
                              start_tls=True, timeout=2)
    facts = directory.facts(LAURA)
    kinds = {i.kind: i for i in facts.intermediary}
    assert {d.company_cf for d in kinds["commercialista"].deleghe} == {
        "00743110157", "01234567897"}


def test_start_tls_with_an_untrusted_certificate_is_refused(slapd, tmp_path):
    other_ca = tmp_path / "other.pem"
    other_ca.write_bytes(_other_ca())
    untrusting = LdapDirectory(slapd.plain_url, "dc=varco,dc=example", bind_dn=READER_DN,
                               password=slapd.reader_password, ca_file=str(other_ca),
                               start_tls=True, timeout=2)
    with pytest.raises(DirectoryUnavailable, match="LDAPStartTLSError") as refused:
        untrusting.facts(LAURA)
    assert "CERTIFICATE_VERIFY_FAILED" in str(refused.value.__cause__)


def test_the_server_refuses_a_bind_without_tls_on_the_plain_port(slapd):
    """What ``start_tls`` protects against: the password would cross in clear; the test
    directory, like a production one should, refuses that bind."""
    conn = Connection(Server(slapd.plain_url), user=READER_DN,
                      password=slapd.reader_password)
    assert not conn.bind()
    assert conn.result["description"] == "confidentialityRequired"


def test_plain_ldap_without_tls_is_not_accepted():
    with pytest.raises(ValueError, match="ldaps"):
        LdapDirectory("ldap://127.0.0.1:389", "dc=varco,dc=example")


def _other_ca() -> bytes:
    from cryptography.hazmat.primitives.asymmetric import ec

    from tests.directory.slapd_env import _cert, _pem

    key = ec.generate_private_key(ec.SECP256R1())
    return _pem(_cert("Someone else", key, ca=True))


def test_directory_down_fails_closed_only_where_needed(slapd, broker_factory, monkeypatch):
    monkeypatch.setenv("VARCO_TEST_LDAP_PASSWORD", slapd.reader_password)
    if slapd.proc is None:
        slapd.start()
    broker = broker_factory(directory=DirectorySettings(
        backend="ldap", ldap_url=slapd.url, base_dn="dc=varco,dc=example", bind_dn=READER_DN,
        password_env="VARCO_TEST_LDAP_PASSWORD", tls_ca=slapd.ca_file, timeout=2))

    def login(rp, cf, pin):
        browser = Browser(broker.url)
        pending = rp.authorize_params()
        return pending, browser.pin_login(browser.authorize(pending), cf, pin, rp.redirect_uri)

    pending, response = login(isee_rp(broker.url), LAURA, PIN_LAURA)
    code_from(response, pending)  # the ISEE operator role, from LDAP
    slapd.stop()
    try:
        pending, page = login(isee_rp(broker.url), LAURA, PIN_LAURA)
        assert page.status_code == 503
        assert "non risponde" in page.text  # readable, Italian first
        assert "location" not in page.headers
        entry = broker.ctx.audit.entries("directory.unavailable")[0]
        assert entry.data["needed"] is True
        # a plain citizen login for a service that needs no roles still works
        pending, response = login(demo_rp(broker.url), GIUSEPPE, PIN_GIUSEPPE)
        code_from(response, pending)
    finally:
        slapd.start()
    pending, response = login(isee_rp(broker.url), LAURA, PIN_LAURA)
    code_from(response, pending)  # back up: works again
