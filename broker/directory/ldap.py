"""The LDAP directory backend (ldap3), read-only, over LDAPS or StartTLS.

Schema: ``config/ldap/varco.schema`` (object classes ``varcoComune``, ``varcoDelega``,
``varcoOperatorGrant``, ``varcoDelegation``) with entries under ``ou=comuni``,
``ou=deleghe``, ``ou=operatori`` and ``ou=delegations`` of ``base_dn``; an example in
``config/ldap/example.ldif``. The broker binds with a read-only account and never
writes: changes go through the directory's own tools (writes raise ``DirectoryReadOnly``).

Every value that goes into a search filter passes through ``_eq`` (ldap3's
``escape_filter_chars``), the one boundary where input meets LDAP syntax; DNs are never
built from input. Any LDAP or network failure becomes ``DirectoryUnavailable``.
"""

from __future__ import annotations

import math
import ssl
from datetime import date, datetime
from typing import Any, NoReturn

from ldap3 import NONE, SUBTREE, Connection, Server, Tls
from ldap3.core.exceptions import LDAPException
from ldap3.utils.conv import escape_filter_chars

from broker.config import DirectorySettings
from broker.directory.base import DirectoryReadOnly, DirectoryUnavailable
from broker.directory.model import (
    Comune,
    Convenzione,
    Delega,
    Delegation,
    DirectoryFacts,
    Intermediary,
    OperatorGrant,
)
from broker.fiscal_code import normalize_person

ATTRS = {
    "comune": ("cn", "varcoComuneCode", "description", "varcoConvenzioneStatus",
               "varcoConvenzioneFrom", "varcoConvenzioneUntil"),
    "delega": ("varcoFiscalCode", "varcoIntermediaryKind", "varcoCompanyFiscalCode",
               "varcoCompanyName", "varcoValidFrom", "varcoValidUntil", "varcoDelegaForm"),
    "grant": ("varcoFiscalCode", "varcoComuneCode", "varcoAbilitazione", "varcoGrantedAt",
              "varcoGrantedBy", "varcoReason"),
    "delegation": ("varcoDelegatorFiscalCode", "varcoDelegateFiscalCode", "varcoValidFrom",
                   "varcoValidUntil", "varcoDelegationScope", "varcoCircular"),
}
CLASSES = {"comune": "varcoComune", "delega": "varcoDelega", "grant": "varcoOperatorGrant",
           "delegation": "varcoDelegation"}
OUS = {"comune": "comuni", "delega": "deleghe", "grant": "operatori",
       "delegation": "delegations"}


def _eq(attribute: str, value: str) -> str:
    """``(attribute=value)`` with the value escaped: the one place input enters a filter."""
    return f"({attribute}={escape_filter_chars(value)})"


def _one(entry: dict[str, list[Any]], name: str) -> str | None:
    values = entry.get(name) or []
    return str(values[0]) if values else None


def _day(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


class LdapDirectory:
    """``Directory`` over LDAP. One short connection per lookup (bind, search, unbind)."""

    name = "ldap"

    def __init__(self, url: str, base_dn: str, *, bind_dn: str | None = None,
                 password: str | None = None, ca_file: str | None = None,
                 start_tls: bool = False, timeout: float = 3.0):
        if not url.startswith("ldaps://") and not start_tls:
            raise ValueError("the LDAP directory needs ldaps:// or start_tls: true")
        self.url = url
        self.ca_file = ca_file
        self.base_dn = base_dn
        self.bind_dn = bind_dn
        self.password = password
        self.start_tls = start_tls
        self.timeout = timeout

    @classmethod
    def from_settings(cls, cfg: DirectorySettings) -> LdapDirectory:
        import os

        assert cfg.ldap_url and cfg.base_dn
        return cls(cfg.ldap_url, cfg.base_dn, bind_dn=cfg.bind_dn,
                   password=os.environ.get(cfg.password_env),
                   ca_file=str(cfg.tls_ca) if cfg.tls_ca else None,
                   start_tls=cfg.start_tls, timeout=cfg.timeout)

    # --- the one place that talks to the server --------------------------------------
    def _search(self, kind: str, *tests: tuple[str, str]) -> list[dict[str, list[Any]]]:
        """Entries of ``kind`` whose attributes equal the given values (all escaped)."""
        flt = "(&" + _eq("objectClass", CLASSES[kind]) + "".join(
            _eq(a, v) for a, v in tests) + ")"
        try:
            # A fresh Server each time: ldap3 remembers an address that failed once and
            # would keep refusing it after the directory is back.
            tls = Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=self.ca_file,
                      version=ssl.PROTOCOL_TLS_CLIENT)
            server = Server(self.url, use_ssl=self.url.startswith("ldaps://"), tls=tls,
                            connect_timeout=self.timeout, get_info=NONE)
            conn = Connection(server, user=self.bind_dn, password=self.password,
                              read_only=True, receive_timeout=max(1, math.ceil(self.timeout)),
                              raise_exceptions=True, auto_bind=False)
            conn.open()
            if self.start_tls:
                conn.start_tls()
            conn.bind()
            try:
                conn.search(f"ou={OUS[kind]},{self.base_dn}", flt, SUBTREE,
                            attributes=list(ATTRS[kind]), time_limit=int(self.timeout) + 1)
                response = conn.response
                if response is None:  # only when no search ran; answers fail closed
                    raise LDAPException("no search response")
                return [dict(e["attributes"]) for e in response
                        if e.get("type") == "searchResEntry"]
            finally:
                conn.unbind()
        except LDAPException as exc:
            if type(exc).__name__ == "LDAPNoSuchObjectResult":
                return []
            raise DirectoryUnavailable(f"ldap: {type(exc).__name__}") from exc
        except Exception as exc:  # network, TLS, protocol: the directory cannot answer
            raise DirectoryUnavailable(f"ldap: {type(exc).__name__}") from exc

    # --- reads -----------------------------------------------------------------------
    def facts(self, fiscal_code: str) -> DirectoryFacts:
        cf = normalize_person(fiscal_code)
        by_kind: dict[str, list[Delega]] = {}
        for e in self._search("delega", ("varcoFiscalCode", cf)):
            kind = _one(e, "varcoIntermediaryKind") or ""
            # model_validate: the directory's text is checked against the Literal choices
            by_kind.setdefault(kind, []).append(Delega.model_validate({
                "company_cf": _one(e, "varcoCompanyFiscalCode") or "",
                "company_name": _one(e, "varcoCompanyName"),
                "valid_from": _day(_one(e, "varcoValidFrom")) or date.min,
                "valid_until": _day(_one(e, "varcoValidUntil")),
                "form": _one(e, "varcoDelegaForm")}))
        intermediary = tuple(
            Intermediary.model_validate({
                "fiscal_code": cf, "kind": k,
                "deleghe": tuple(sorted(v, key=lambda d: d.company_cf))})
            for k, v in sorted(by_kind.items()))
        grants = sorted((self._grant(e) for e in self._search(
            "grant", ("varcoFiscalCode", cf))), key=lambda g: g.comune)
        operator = tuple((g, self.comune(g.comune)) for g in grants)
        delegations = tuple(sorted((Delegation(
            delegator_cf=_one(e, "varcoDelegatorFiscalCode") or "",
            delegate_cf=cf, valid_from=_day(_one(e, "varcoValidFrom")) or date.min,
            valid_until=_day(_one(e, "varcoValidUntil")),
            scope=_one(e, "varcoDelegationScope") or "all",
            circular=_one(e, "varcoCircular") or "127/2021")
            for e in self._search("delegation", ("varcoDelegateFiscalCode", cf))),
            key=lambda d: d.delegator_cf))
        return DirectoryFacts(fiscal_code=cf, intermediary=intermediary, operator=operator,
                              delegations=delegations)

    @staticmethod
    def _grant(e: dict[str, list[Any]]) -> OperatorGrant:
        return OperatorGrant(
            fiscal_code=_one(e, "varcoFiscalCode") or "",
            comune=_one(e, "varcoComuneCode") or "",
            abilitazioni=tuple(sorted(str(v) for v in e.get("varcoAbilitazione") or [])),
            granted_at=datetime.fromisoformat(_one(e, "varcoGrantedAt") or ""),
            granted_by=_one(e, "varcoGrantedBy") or "?", reason=_one(e, "varcoReason") or "?")

    def comune(self, code: str) -> Comune | None:
        found = self._search("comune", ("varcoComuneCode", code))
        if len(found) != 1:
            return None
        e = found[0]
        conv = None
        if _one(e, "varcoConvenzioneFrom"):
            conv = Convenzione.model_validate({  # the status text checked against its choices
                "valid_from": _day(_one(e, "varcoConvenzioneFrom")),
                "valid_until": _day(_one(e, "varcoConvenzioneUntil")),
                "status": _one(e, "varcoConvenzioneStatus") or "active"})
        return Comune(code=_one(e, "varcoComuneCode") or code,
                      name=_one(e, "description") or code, convenzione=conv)

    def operators(self, comune: str) -> list[OperatorGrant]:
        return sorted((self._grant(e) for e in self._search(
            "grant", ("varcoComuneCode", comune))), key=lambda g: g.fiscal_code)

    # --- writes: not here ------------------------------------------------------------
    def _read_only(self, *_: Any, **__: Any) -> NoReturn:
        raise DirectoryReadOnly("the LDAP directory is read-only for the broker",
                                message=DirectoryReadOnly.message)

    put_comune = grant = revoke = add_delega = revoke_delega = _read_only
    add_delegation = revoke_delegation = _read_only
