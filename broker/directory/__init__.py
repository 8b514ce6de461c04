"""The directory of roles: intermediaries and deleghe, comuni and operators, delegations.

Public API: the frozen models in ``broker.directory.model``, the ``Directory`` protocol and
``DirectoryUnavailable`` in ``broker.directory.base``, the embedded SQLite backend
(``SqliteDirectory``) and the LDAP backend (``LdapDirectory``, ldap3), and
``build_directory(settings, db, clock)`` which picks one from the ``directory:`` settings.
"""

from broker.directory.base import Directory, DirectoryError, DirectoryUnavailable
from broker.directory.model import (
    SERVICES,
    Comune,
    Convenzione,
    Delega,
    Delegation,
    DirectoryFacts,
    Intermediary,
    OperatorGrant,
)

__all__ = [
    "SERVICES",
    "Comune",
    "Convenzione",
    "Delega",
    "Delegation",
    "Directory",
    "DirectoryError",
    "DirectoryFacts",
    "DirectoryUnavailable",
    "Intermediary",
    "OperatorGrant",
]
