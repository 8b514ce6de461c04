"""Provider types: what a login method declares to the core, and how the core finds them.

A provider *type* says everything the broker needs to know about a login method without
naming it anywhere in ``broker/``: its config model and factory, the acr values it
asserts with their ranks, its ``amr``, the facts it adds to the policy input, its CLI
subcommands. Routes (metadata, admin, demo) come from the built provider through the
capabilities of ``providers.base``.

Types are found through the ``varco.providers`` entry-point group (``pyproject.toml``),
so a separate package can add one: it declares
``[project.entry-points."varco.providers"] mine = "my_pkg:PROVIDER_TYPE"``.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from broker.errors import Text
from broker.model import AcrLevel, register_acr_levels

if TYPE_CHECKING:
    from providers.base import Provider, ProviderConfig, ProviderServices

log = logging.getLogger("varco.providers")
GROUP = "varco.providers"

# ``varco <name> ...``: a type adds its subcommands to the CLI's subparsers.
CliHook = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]


@dataclass(frozen=True)
class ProviderType:
    """One login method as the core sees it, before any config is read.

    - ``name``: the provider id in ``idp_hint``, mapping and policy files, the URL prefix.
    - ``acr_levels`` / ``default_acr``: what its logins assert; ``default_acr`` is what
      ``varco policy explain`` and policy tests assume when none is given.
    - ``amr``: RFC 8176 values for its logins (the CNS says ``sc``, smart card).
    - ``facts``: the event attributes it adds that policies may read, with their meaning
      (``event.pin_privilege``); ``policy check`` knows these paths from here.
    - ``policy_names``: other provider names its own pages decide with (the PIN request
      form asks the policy as ``pin_request``).
    - ``identifier_schemes``: person identifiers other than the codice fiscale its logins
      may carry (``eidas``); RPs get them as ``<scheme>_person_identifier``.
    - ``admin_scopes``: the scopes its back-office API (``HasAdminRoutes``) requires.
    - ``client_options``: what an RP's registration may ask of it (``provider_options``),
      as a model: a typo in a client file is a start-up error.
    - ``requires``: provider types that must be configured too and are built first; the
      factory finds them in ``ProviderServices.peers`` (eIDAS rides on the SPID SP).
    """

    name: str
    label: Text
    config: type[ProviderConfig]
    factory: Callable[[Any, ProviderServices], Provider]
    acr_levels: tuple[AcrLevel, ...]
    default_acr: str
    amr: tuple[str, ...]
    facts: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    cli: CliHook | None = None
    policy_names: tuple[str, ...] = ()
    identifier_schemes: tuple[str, ...] = ()
    requires: tuple[str, ...] = ()
    admin_scopes: tuple[str, ...] = ()
    client_options: type[BaseModel] | None = None

    def __post_init__(self) -> None:
        if self.default_acr not in {level.uri for level in self.acr_levels}:
            raise ValueError(f"provider type {self.name}: default_acr is not one of its acr")

    def acr_for(self, level: str | int | None) -> str:
        """The acr for a level as an admin types it: 2, ``L2``, ``SpidL2``, or the URI.

        Raises ``ValueError`` naming what this type accepts.
        """
        if level is None or level == "":
            return self.default_acr
        text = str(level).strip()
        for acr in self.acr_levels:
            if text == acr.uri or text.lower() in {a.lower() for a in acr.aliases}:
                return acr.uri
        accepted = [a for acr in self.acr_levels for a in (*acr.aliases, acr.uri)]
        raise ValueError(f"unknown level {text!r} for {self.name}: use one of "
                         f"{', '.join(accepted)}")


_TYPES: dict[str, ProviderType] = {}
_LOADED = False


def register(kind: ProviderType) -> None:
    """Add a provider type by hand (tests; a program embedding the broker)."""
    known = _TYPES.get(kind.name)
    if known is not None and known is not kind:
        raise ValueError(f"two provider types named {kind.name!r}")
    register_acr_levels(kind.acr_levels)
    _TYPES[kind.name] = kind


def provider_types() -> dict[str, ProviderType]:
    """Every installed provider type, by name (entry points read once per process)."""
    global _LOADED
    if not _LOADED:
        _LOADED = True
        for point in entry_points(group=GROUP):
            kind = point.load()
            if callable(kind) and not isinstance(kind, ProviderType):
                kind = kind()
            if not isinstance(kind, ProviderType) or kind.name != point.name:
                raise TypeError(f"entry point {GROUP}:{point.name} is not a ProviderType "
                                f"named {point.name!r}")
            register(kind)
    return dict(_TYPES)


def policy_provider_names() -> set[str]:
    """Names a policy rule may test ``provider`` against (types and their extra names)."""
    return {n for kind in provider_types().values() for n in (kind.name, *kind.policy_names)}
