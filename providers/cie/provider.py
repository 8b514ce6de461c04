"""The CIE provider: the shared SAML SP (``providers.saml.sp``) with the CIE ID rules.

What is CIE's own: one IdP (CIE ID), reached straight away (no chooser);
``Comparison`` exact or minimum from the config; the level asked is the configured
floor or what the RP needs, whichever is higher, and the policy decides what a level
gives; the Issuer of the Response and of the Assertion may come without ``Format``
(its value is still checked against the IdP's entityID); the CIE error codes 1, 21, 22
become readable pages and 25 (cancelled) goes back to the RP; no SAML logout (the
provider is not ``LogoutCapable``).
"""

from __future__ import annotations

from typing import ClassVar

from fastapi import Request, Response

from broker.errors import Text
from broker.model import AuthRequest
from providers.base import LoginStep, ProviderServices, Refusal
from providers.cie.config import CieConfig
from providers.cie.errors import CIE_ERRORS, CieNoSingleLogout, CieUnknownIdp
from providers.cie.metadata import build_metadata
from providers.saml.idp_registry import IdpInfo
from providers.saml.sp import SamlServiceProvider
from providers.spid.levels import SPID_LEVELS, required_acr


class CieProvider(SamlServiceProvider):
    """Implements ``providers.base.Provider`` for CIE ID (SAML2), with ``Callbacks``,
    ``Choices``, ``LeavesOnStart``, ``HasButton`` and ``HasDemo``."""

    name = "cie"
    label = Text("Entra con CIE", "Sign in with CIE")
    chooser_partial = "cie_button.html"
    acr_levels: ClassVar[dict[str, int]] = SPID_LEVELS
    errors = CIE_ERRORS
    issuer_format_required = False
    cfg: CieConfig

    def __init__(self, cfg: CieConfig, services: ProviderServices):
        super().__init__(cfg, services)
        self._router.add_api_route("/slo", self.slo, methods=["GET", "POST"])

    # --- the profile --------------------------------------------------------------------
    def requested_acr(self, auth: AuthRequest) -> str:
        return required_acr(auth, floor=self.cfg.level)

    def comparison(self) -> str:
        return self.cfg.comparison

    def build_metadata(self) -> bytes:
        return build_metadata(self.cfg, self.endpoints, self.keys)

    def idp(self) -> IdpInfo | None:
        """The CIE IdP: the configured entityID, or the only trusted one."""
        if self.cfg.idp_entity_id:
            return self.registry.get(self.cfg.idp_entity_id)
        found = self.registry.all()
        return found[0] if len(found) == 1 else None

    # --- Provider contract ------------------------------------------------------------
    def choices(self) -> list[dict[str, str]]:
        """Nothing to choose: the login page shows one "Entra con CIE" button."""
        return []

    def has_choice(self, choice_id: str) -> bool:
        """``providers.base.Choices``: no sub-choices, as ``choices()`` says."""
        return False

    def leaves_on_start(self, hint: str | None) -> bool:
        """``providers.base.LeavesOnStart``: one IdP, reached straight away (or an error
        page of ours when none is trusted, which is rare enough to show at /authorize)."""
        return True

    def start(self, step: LoginStep, hint: str | None) -> Response | Refusal:
        """The AuthnRequest to the CIE IdP, or our error page."""
        idp = self.idp()
        if idp is None:
            return Refusal(CieUnknownIdp(
                "no CIE IdP: none or several trusted, and no idp_entity_id"))
        if hint and hint != idp.entity_id:
            return Refusal(CieUnknownIdp("idp_hint names another IdP"))
        return self.send_request(step.auth, idp)

    def slo(self, request: Request) -> Response:
        """Declared in the metadata because the CIE schema requires it; no logout here."""
        raise CieNoSingleLogout("SAML logout message at /cie/slo: not supported")


def create_cie_provider(cfg: CieConfig, services: ProviderServices) -> CieProvider:
    return CieProvider(cfg, services)


__all__ = ["CieProvider", "create_cie_provider"]
