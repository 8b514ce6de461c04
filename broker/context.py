"""Everything a running broker shares, built once by the app factory and passed around.

Keys, policies and mappings are parsed once here at start, never per request.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from broker.audit import AuditLog
from broker.clock import Clock
from broker.config import Settings
from broker.http.pages import Renderer
from broker.login.session import SessionManager
from broker.store.base import Database, EphemeralStore

if TYPE_CHECKING:
    from broker.login.interaction import AuthorizationFront, LoginStarter
    from broker.mapping import MappingSet
    from broker.policy import PolicyHolder
    from providers.base import Provider


@dataclass
class BrokerContext:
    settings: Settings
    issuer: str
    clock: Clock
    db: Database
    ephemeral: EphemeralStore
    sessions: SessionManager
    audit: AuditLog
    templates: Renderer
    secret_key: bytes
    policy: PolicyHolder
    mappings: MappingSet
    providers: dict[str, Provider] = field(default_factory=dict)
    login: LoginStarter = field(init=False)
    front: AuthorizationFront = field(init=False)
