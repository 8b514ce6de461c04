"""The broker's shared infrastructure, built once by the app factory and handed around.

Stores, clock, sessions, audit trail, page renderer, policy and mappings: what every
component uses and none owns. Components get this plus the components they depend on,
built before them (``broker.app``); none is looked up through it later.
Keys, policies and mappings are parsed once at start, never per request.
"""

from __future__ import annotations

from dataclasses import dataclass

from broker.audit import AuditLog
from broker.clock import Clock
from broker.config import Settings
from broker.http.pages import Renderer
from broker.login.session import SessionManager
from broker.mapping import MappingSet
from broker.policy import PolicyHolder
from broker.store.base import Database, EphemeralStore


@dataclass(frozen=True)
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
