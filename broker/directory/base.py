"""The ``Directory`` interface both backends implement, and its errors.

Reads (``facts``, ``comune``, ``operators``) are what a login and the admin listing need;
writes are the admin API's. The LDAP backend is read-only from the broker's side (the
directory is administered with its own tools), so its writes raise ``DirectoryReadOnly``.
Every backend raises ``DirectoryUnavailable`` when it cannot answer: callers fail closed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from broker.directory.model import (
    Comune,
    Delega,
    Delegation,
    DirectoryFacts,
    IntermediaryKind,
    OperatorGrant,
)
from broker.errors import BrokerError, ServiceUnavailable, Text


class DirectoryError(BrokerError):
    """A change the directory refuses (exclusive pair, unknown comune, bad value)."""

    status = 409
    code = "directory_conflict"
    message = Text("La modifica richiesta non è ammessa.", "The requested change is not allowed.")

    def __init__(self, detail: str = "", *, message: Text | None = None,
                 status: int | None = None):
        # Admin-facing: the detail names services and comuni, never a person.
        if message is None and detail:
            message = Text(f"Modifica non ammessa: {detail}", f"Change not allowed: {detail}")
        super().__init__(detail, message=message, status=status)


class DirectoryReadOnly(DirectoryError):
    status = 405
    code = "directory_read_only"
    message = Text("Questo elenco si gestisce con gli strumenti della directory LDAP.",
                   "This directory is managed with the LDAP directory's own tools.")


class DirectoryUnavailable(ServiceUnavailable):
    """The directory cannot be reached: logins that need it fail closed with this page."""

    code = "directory_unavailable"
    message = Text(
        "Non è possibile verificare ora le tue abilitazioni (deleghe, incarichi comunali, "
        "deleghe dell'identità digitale) perché l'elenco non risponde. Riprova tra qualche "
        "minuto; se devi accedere solo per te stesso, puoi farlo da un servizio che non "
        "richiede abilitazioni.",
        "Your authorisations (deleghe, municipal roles, identity delegations) cannot be "
        "checked right now because the directory is not answering. Please try again in a "
        "few minutes; services that need no authorisation still work for your own use.")


class Directory(Protocol):
    """Where roles come from. Implemented by ``SqliteDirectory`` and ``LdapDirectory``."""

    name: str

    def facts(self, fiscal_code: str) -> DirectoryFacts:
        """Everything known about this person (expired items included: policy filters)."""

    def comune(self, code: str) -> Comune | None: ...

    def operators(self, comune: str) -> list[OperatorGrant]:
        """Every official holding abilitazioni for ``comune`` (sorted by fiscal code)."""

    # --- changes (admin API); reason and author go to the audit trail too --------
    def put_comune(self, comune: Comune) -> None: ...

    def grant(self, fiscal_code: str, comune: str, services: tuple[str, ...], *,
              by: str, reason: str, now: datetime) -> OperatorGrant:
        """Extend (never replace) the official's abilitazioni for ``comune``."""

    def revoke(self, fiscal_code: str, comune: str, services: tuple[str, ...] | None, *,
               by: str, reason: str, now: datetime) -> OperatorGrant | None:
        """Remove some (or, with None, all) abilitazioni; None when nothing is left."""

    def add_delega(self, fiscal_code: str, kind: IntermediaryKind, delega: Delega) -> None: ...

    def revoke_delega(self, fiscal_code: str, kind: IntermediaryKind, company_cf: str) -> bool:
        ...

    def add_delegation(self, delegation: Delegation) -> None: ...

    def revoke_delegation(self, delegator_cf: str, delegate_cf: str) -> bool: ...
