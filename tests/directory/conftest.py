"""Directory fixtures: the same behavioural tests run on the embedded backend and on a
real slapd (``directory`` is parametrized over both)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest

from broker.directory.demo import seed_demo_directory
from broker.directory.ldap import LdapDirectory
from broker.directory.model import Comune, Convenzione, Delega
from broker.directory.sqlite import SqliteDirectory
from broker.store import SqliteDatabase
from tests.directory.slapd_env import READER_DN, Slapd, make_slapd

ODD_NAME = r"Comune *()\ di prova"  # every LDAP filter metacharacter
ODD_COMPANY = r"Studio (Rossi) * \ associati"
NOW = datetime(2025, 3, 1, 12, tzinfo=UTC)

ODD_LDIF = rf"""dn: cn=Z998,ou=comuni,dc=varco,dc=example
objectClass: varcoComune
cn: Z998
varcoComuneCode: Z998
description: {ODD_NAME}
varcoConvenzioneStatus: active
varcoConvenzioneFrom: 2024-01-01

dn: cn=RSSMRA80A01H501U-avvocato-00743110157,ou=deleghe,dc=varco,dc=example
objectClass: varcoDelega
cn: RSSMRA80A01H501U-avvocato-00743110157
varcoFiscalCode: RSSMRA80A01H501U
varcoIntermediaryKind: avvocato
varcoCompanyFiscalCode: 00743110157
varcoCompanyName: {ODD_COMPANY}
varcoValidFrom: 2024-01-01
varcoDelegaForm: SC64
"""


@pytest.fixture(scope="session")
def slapd(tmp_path_factory) -> Iterator[Slapd]:
    server = make_slapd(tmp_path_factory.mktemp("slapd"))
    server.add_ldif(ODD_LDIF)
    server.start()
    yield server
    server.stop()


def ldap_directory(server: Slapd, **kw) -> LdapDirectory:
    return LdapDirectory(server.url, "dc=varco,dc=example", bind_dn=READER_DN,
                         password=server.reader_password, ca_file=str(server.ca_file),
                         timeout=2, **kw)


@pytest.fixture(params=["embedded", pytest.param("ldap", marks=pytest.mark.integration)])
def directory(request, tmp_path):
    if request.param == "embedded":
        d = SqliteDirectory(SqliteDatabase(tmp_path / "dir.db"))
        seed_demo_directory(d, NOW)
        d.put_comune(Comune(code="Z998", name=ODD_NAME, convenzione=Convenzione(
            valid_from=date(2024, 1, 1))))
        d.add_delega("RSSMRA80A01H501U", "avvocato", Delega(
            company_cf="00743110157", company_name=ODD_COMPANY, valid_from=date(2024, 1, 1),
            form="SC64"))
        return d
    server = request.getfixturevalue("slapd")
    if server.proc is None:
        server.start()
    return ldap_directory(server)
