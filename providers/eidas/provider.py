"""The eIDAS login: a citizen of another EU state signs in with their own country's eID.

Since 29 September 2018 a public administration that accepts SPID and CIE must also
accept the notified eIDs of the other member states. Italy's eIDAS node, FICEP, looks
to a service provider like one more SPID IdP, and relays the login to the citizen's
country. So this provider rides on the SPID SP (``providers.saml.sp.SamlMethod``): the
AuthnRequest goes out with the SPID SP's identity and keys to FICEP, asking for the
eIDAS attribute set (``AttributeConsumingServiceIndex`` 99, minimum, or 100, full) and
the level, and FICEP's signed answer comes back to the SPID ACS, where it is validated
by the very code that validates SPID answers (same signature, replay and wrapping
checks), then made into an ``eidas`` event here:

- the person identifier (``spidCode``, ``DE/IT/...``) identifies the person; the
  codice fiscale is there only when FICEP sends one or the back office has linked the
  identifier to one (``providers.eidas.links``): then the event says ``linked``;
- the level is the eIDAS one (substantial, high), from the SPID level FICEP asserts;
- ``amr`` is ``eidas``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import APIRouter, Response

from broker.errors import ProviderError, Text
from broker.model import AuthEvent, AuthRequest
from providers.base import LoginStep, ProviderServices, Refusal
from providers.eidas.config import EidasConfig
from providers.eidas.levels import (
    BY_NAME,
    EIDAS_TO_SPID,
    LOA_HIGH,
    SPID_TO_EIDAS,
)
from providers.eidas.links import LinkStore
from providers.saml.idp_registry import IdpInfo, IdpRegistry
from providers.saml.response import SamlAssertion
from providers.saml.sp import SamlServiceProvider
from providers.saml.sp_metadata import AttributeService

log = logging.getLogger("varco.providers.eidas")

# FICEP's two attribute sets (AgID, eidas-italian-node/examples): exactly these names.
MINIMUM = (99, "eIDAS Natural Person Minimum Attribute Set",
           ("dateOfBirth", "familyName", "name", "spidCode"))
FULL = (100, "eIDAS Natural Person Full Attribute Set",
        ("address", "dateOfBirth", "familyName", "gender", "name", "placeOfBirth",
         "spidCode"))
# What FICEP may add to either: a codice fiscale when the person has one.
MAY_ALSO_SEND = ("fiscalNumber",)
ACS_PATH = "/spid/acs"  # FICEP answers at the SPID SP's ACS
DEMO_LINKS = (("FR/IT/18508914200123", "BNCLRA85M41Z404W"),)  # eidas.bianchi is Laura


class FicepUnavailable(ProviderError):
    code = "eidas_unavailable"
    status = 503
    message = Text(
        "L'accesso con eIDAS non è al momento disponibile. Riprova più tardi o scegli un "
        "altro metodo di accesso.",
        "Sign-in with eIDAS is not available at the moment. Try again later or choose "
        "another sign-in method.")


class EidasProvider:
    """Implements ``providers.base.Provider`` (``LeavesOnStart``, ``ReturnsTo``,
    ``HasButton``, ``HasAdminRoutes``, ``HasDemo``) and ``providers.saml.sp.SamlMethod``."""

    name = "eidas"
    label = Text("Entra con eIDAS (identità digitale europea)",
                 "Login with eIDAS (European digital identity)")
    chooser_partial = "eidas_button.html"

    def __init__(self, cfg: EidasConfig, services: ProviderServices,
                 sp: SamlServiceProvider, links: LinkStore):
        self.cfg = cfg
        self.services = services
        self.sp = sp
        self.links = links
        self._router = APIRouter()
        configured = cfg.ficep_metadata_dir if cfg.ficep_metadata_dir.is_absolute() else \
            Path(services.config_dir) / cfg.ficep_metadata_dir
        # The configured folder, plus <data_dir>/eidas-idps where the demo drops its test FICEP.
        self._registry = IdpRegistry([configured, Path(services.data_dir) / "eidas-idps"],
                                     services.clock.now, min_interval=1.0)
        self._set = FULL if cfg.attribute_set == "full" else MINIMUM
        sp.attach(self)

    # --- Provider ------------------------------------------------------------------------
    @property
    def router(self) -> APIRouter:
        return self._router

    def start(self, step: LoginStep, hint: str | None) -> Response | Refusal:
        """The AuthnRequest to FICEP, signed as the SPID SP."""
        ficep = self.ficep()
        if ficep is None:
            return Refusal(FicepUnavailable("no trusted FICEP entity (metadata folder empty, "
                                            "several entities and no ficep_entity_id, or "
                                            "its certificate expired)"))
        return self.sp.send_request(step.auth, ficep, method=self)

    def leaves_on_start(self, hint: str | None) -> bool:
        """``LeavesOnStart``: straight to FICEP, from ``/authorize`` itself."""
        return True

    def return_paths(self) -> list[str]:
        """``ReturnsTo``: FICEP's answer comes back, cross-site, to the SPID ACS."""
        return [ACS_PATH]

    def ficep(self) -> IdpInfo | None:
        if self.cfg.ficep_entity_id:
            return self._registry.get(self.cfg.ficep_entity_id)
        found = self._registry.all()
        return found[0] if len(found) == 1 else None

    def admin_router(self) -> APIRouter:
        from providers.eidas.admin import admin_router

        return admin_router(self.links, self.services)

    def demo_routes(self) -> list[tuple[str, APIRouter]]:
        """``HasDemo``: with ``test_idp``, the test IdP plays FICEP at /test-idp-eidas."""
        if not self.cfg.test_idp:
            return []
        from providers.saml.testidp.mount import PLACES, demo_test_idp

        router, _ = demo_test_idp(self.services.base_url, self.services.data_dir,
                                  self.sp.metadata_xml, profile="eidas")
        return [(PLACES["eidas"][0], router)]

    # --- SamlMethod ----------------------------------------------------------------------
    @property
    def registry(self) -> IdpRegistry:
        return self._registry

    @property
    def attribute_index(self) -> int:
        return self._set[0]

    @property
    def attributes(self) -> tuple[str, ...]:
        return (*self._set[2], *MAY_ALSO_SEND)

    def attribute_services(self) -> list[AttributeService]:
        """Both sets are declared (FICEP checks the SP metadata for them)."""
        return [MINIMUM, FULL]

    def requested_acr(self, auth: AuthRequest) -> str:
        """The SPID URI of the eIDAS level asked: the configured floor, or high when the
        RP needs high assurance."""
        wanted = LOA_HIGH if auth.required_acr in (LOA_HIGH, EIDAS_TO_SPID[LOA_HIGH]) \
            else BY_NAME[self.cfg.level]
        return EIDAS_TO_SPID[wanted]

    def event(self, assertion: SamlAssertion, idp: IdpInfo) -> AuthEvent:
        """An ``eidas`` login: the person identifier, and the linked codice fiscale."""
        attributes: dict[str, object] = dict(assertion.attributes)
        pid = attributes.get("spidCode")
        linked = self.links.get(pid) if isinstance(pid, str) else None
        attributes["linked"] = linked is not None
        if linked is not None:
            attributes["linked_fiscal_code"] = linked
        return AuthEvent(
            provider=self.name, subject=pid if isinstance(pid, str) else assertion.name_id,
            attributes=attributes, acr=SPID_TO_EIDAS.get(assertion.acr, assertion.acr),
            amr=("eidas",), auth_time=assertion.authn_instant, idp=idp.entity_id,
            provider_state={"name_id": assertion.name_id,
                            "name_qualifier": assertion.name_qualifier,
                            "session_index": assertion.session_index or ""})


def create_eidas_provider(cfg: EidasConfig, services: ProviderServices) -> EidasProvider:
    """Registry factory: rides on the SPID SP (the type ``requires`` it)."""
    sp = services.peers["spid"]
    if not isinstance(sp, SamlServiceProvider):
        raise TypeError("the eidas provider needs the SPID SAML service provider")
    links = LinkStore(services.db, services.audit)
    if cfg.demo_links:
        for pid, cf in DEMO_LINKS:
            links.link(pid, cf, operator="demo", reason="demo data (README)",
                       now=services.clock.now())
    return EidasProvider(cfg, services, sp, links)
