"""The directory facts a login's policy input carries (abilitazioni, deleghe, operators).

The directory may be a network service (LDAP): when it is down, a login whose RP needs
roles (an abilitazione requirement, or the ``abilitazioni`` scope) fails closed with a
readable page; a plain citizen login goes on without roles.
"""

from __future__ import annotations

import logging
from typing import Any

from broker.audit import AuditLog
from broker.directory.base import Directory, DirectoryUnavailable
from broker.fiscal_code import mask
from broker.model import AuthRequest
from broker.policy import PolicyHolder

log = logging.getLogger("varco.roles")


class DirectoryFacts:
    def __init__(self, directory: Directory, policy: PolicyHolder, audit: AuditLog):
        self.directory = directory
        self.policy = policy
        self.audit = audit

    def load(self, auth: AuthRequest, fiscal_code: str | None) -> dict[str, Any]:
        """Directory facts for the policy input; fail closed only when this RP needs them.

        The directory knows people by codice fiscale: someone without one has no role.
        """
        if fiscal_code is None:
            return {}
        try:
            return self.directory.facts(fiscal_code).as_policy_facts()
        except Exception as exc:
            needed = self.policy.engine.needs_directory(auth.client_id, auth.scopes)
            log.warning("directory %s unavailable for cf=%s client=%s needed=%s: %s",
                        self.directory.name, mask(fiscal_code), auth.client_id, needed,
                        type(exc).__name__)
            self.audit.record("directory.unavailable", client_id=auth.client_id,
                              needed=needed, error=type(exc).__name__)
            if not needed:
                return {}
            if isinstance(exc, DirectoryUnavailable):
                raise
            raise DirectoryUnavailable(f"directory error: {type(exc).__name__}") from exc
