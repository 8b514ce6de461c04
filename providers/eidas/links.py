"""Links between an eIDAS person identifier and a codice fiscale, made by the back office.

An eID of another EU state carries a person identifier (``DE/IT/0123456789``: issuing
country, receiving country, the country's own identifier) and often nothing Italian.
Once the institute has identified the person (documents, a visit), an operator links
that identifier to their codice fiscale: from then on the eIDAS login carries the
codice fiscale, so the person has their position, their abilitazioni and the same
``sub`` as with their PIN. Every link and unlink names the operator and the reason in
the audit trail, in the same commit as the change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from broker.audit import AuditLog
from broker.errors import BadRequest, NotFound, Text
from broker.fiscal_code import mask, normalize_person
from broker.store.base import Database
from providers.eidas.schema import LINKS

# eIDAS SAML Attribute Profile 1.2, PersonIdentifier: <country>/<country>/<identifier>.
PERSON_IDENTIFIER = re.compile(r"^[A-Z]{2}/[A-Z]{2}/[A-Za-z0-9+/=._:-]{1,200}$")


class InvalidPersonIdentifier(BadRequest):
    code = "invalid_person_identifier"
    message = Text(
        "L'identificativo eIDAS non è valido: deve avere la forma PP/IT/identificativo "
        "(PP è il paese che ha rilasciato l'identità).",
        "The eIDAS identifier is not valid: it must read CC/IT/identifier (CC is the "
        "country that issued the identity).")


class AlreadyLinked(BadRequest):
    status = 409
    code = "already_linked"
    message = Text(
        "Questo identificativo eIDAS è già collegato a un altro codice fiscale: scollegalo "
        "prima, indicando il motivo.",
        "This eIDAS identifier is already linked to another codice fiscale: unlink it "
        "first, giving the reason.")


class NotLinked(NotFound):
    code = "not_linked"
    message = Text("Questo identificativo eIDAS non è collegato.",
                   "This eIDAS identifier is not linked.")


@dataclass(frozen=True)
class Link:
    person_identifier: str
    fiscal_code: str
    linked_at: str
    operator: str
    reason: str


def person_identifier(value: str) -> str:
    """The identifier as eIDAS writes it; ``InvalidPersonIdentifier`` otherwise."""
    text = (value or "").strip()
    if not PERSON_IDENTIFIER.fullmatch(text):
        raise InvalidPersonIdentifier("malformed eIDAS person identifier")
    return text


class LinkStore:
    def __init__(self, db: Database, audit: AuditLog):
        self.db = db
        self.audit = audit
        db.create_tables((LINKS,))

    def get(self, identifier: str) -> str | None:
        """The codice fiscale linked to ``identifier``, if any."""
        for row in self.db.query("SELECT fiscal_code FROM eidas_link WHERE "
                                 "person_identifier=?", (identifier,)):
            return str(row[0])
        return None

    def links(self, fiscal_code: str | None = None) -> list[Link]:
        sql = ("SELECT person_identifier, fiscal_code, linked_at, operator, reason "
               "FROM eidas_link")
        params: tuple[str, ...] = ()
        if fiscal_code is not None:
            sql += " WHERE fiscal_code=?"
            params = (normalize_person(fiscal_code),)
        return [Link(*map(str, r)) for r in self.db.query(sql + " ORDER BY linked_at", params)]

    def link(self, identifier: str, fiscal_code: str, *, operator: str, reason: str,
             now: datetime) -> Link:
        """Link ``identifier`` to ``fiscal_code`` (the same link again changes nothing)."""
        pid, cf = person_identifier(identifier), normalize_person(fiscal_code)
        _need(operator, "operator")
        _need(reason, "reason")
        with self.db.transaction() as c:
            row = c.execute("SELECT fiscal_code FROM eidas_link WHERE person_identifier=?",
                            (pid,)).fetchone()
            if row is not None and row[0] != cf:
                raise AlreadyLinked(f"{pid} is linked to {mask(str(row[0]))}")
            link = Link(pid, cf, now.isoformat(), operator, reason)
            if row is None:
                c.execute("INSERT INTO eidas_link (person_identifier, fiscal_code, "
                          "linked_at, operator, reason) VALUES (?, ?, ?, ?, ?)",
                          (pid, cf, link.linked_at, operator, reason))
                self.audit.record("eidas.linked", person_identifier=pid, fiscal_code=cf,
                                  operator=operator, reason=reason)
        return link

    def unlink(self, identifier: str, *, operator: str, reason: str) -> str:
        """Remove the link; the codice fiscale it had. ``NotLinked`` if there was none."""
        pid = person_identifier(identifier)
        _need(operator, "operator")
        _need(reason, "reason")
        with self.db.transaction() as c:
            row = c.execute("DELETE FROM eidas_link WHERE person_identifier=? "
                            "RETURNING fiscal_code", (pid,)).fetchone()
            if row is None:
                raise NotLinked(f"{pid} is not linked")
            self.audit.record("eidas.unlinked", person_identifier=pid,
                              fiscal_code=str(row[0]), operator=operator, reason=reason)
        return str(row[0])


def _need(value: str, name: str) -> None:
    if not (value or "").strip():
        raise BadRequest(f"{name} missing", message=Text(
            f"Indica {'chi opera' if name == 'operator' else 'il motivo'}.",
            f"Give the {name}."))
