"""The SPID provider: IdP choice, then the shared SAML SP (``providers.saml.sp``).

What is SPID's own: the list of accredited IdPs (the chooser and ``/spid/login``),
``Comparison="minimum"``, Issuer Format required on the assertion, the anomaly codes
19–25 (25, the citizen cancelled, goes back to the RP as ``access_denied``), and
Single Logout (``providers.spid.slo``).
"""

from __future__ import annotations

from typing import ClassVar

from fastapi import Request, Response

from broker.errors import Text
from broker.model import AuthEvent, AuthRequest
from providers.base import LoginStep, ProviderServices, Refusal, StepResult, StepRoute
from providers.saml.sp import PendingRequest, SamlServiceProvider
from providers.spid.config import SpidClientOptions, SpidConfig
from providers.spid.errors import SPID_ERRORS, SpidUnknownIdp
from providers.spid.levels import SPID_LEVELS, required_acr
from providers.spid.metadata import build_metadata


class SpidProvider(SamlServiceProvider):
    """Implements ``providers.base.Provider`` for SPID, with ``Steps``, ``Callbacks``,
    ``Choices``, ``LeavesOnStart``, ``LogoutCapable``, ``HasButton`` and ``HasDemo``."""

    name = "spid"
    label = Text("Entra con SPID", "Sign in with SPID")
    chooser_partial = "spid_button.html"
    acr_levels: ClassVar[dict[str, int]] = SPID_LEVELS
    errors = SPID_ERRORS
    cfg: SpidConfig

    def __init__(self, cfg: SpidConfig, services: ProviderServices):
        super().__init__(cfg, services)
        from providers.spid.slo import SloRoutes

        self.slo = SloRoutes(self)
        self._router.add_api_route("/slo", self.slo.endpoint, methods=["GET", "POST"])

    # --- the profile --------------------------------------------------------------------
    def requested_acr(self, auth: AuthRequest) -> str:
        return required_acr(auth)

    def purpose(self, auth: AuthRequest) -> str | None:
        """The RP's registered ``spid.purpose`` (a professional identity), if any."""
        return SpidClientOptions.model_validate(
            auth.provider_options.get(self.name, {})).purpose

    def build_metadata(self) -> bytes:
        return build_metadata(self.cfg, self.endpoints, self.keys, tuple(
            service for method in self._methods.values()
            for service in method.attribute_services()))

    # --- Provider contract ------------------------------------------------------------
    def choices(self) -> list[dict[str, str]]:
        return [{"id": i.entity_id, "label": i.name} for i in self.registry.all()]

    def has_choice(self, choice_id: str) -> bool:
        """``providers.base.Choices``: one registry lookup instead of the whole list."""
        return self.registry.has(choice_id)

    def leaves_on_start(self, hint: str | None) -> bool:
        """``providers.base.LeavesOnStart``: with an IdP named, straight to it."""
        return bool(hint)

    def steps(self) -> list[StepRoute]:
        """``/spid/login?tx=..&idp=<entityID>``: the IdP list links here."""
        return [StepRoute("/login", ("GET",), self.chosen)]

    def chosen(self, step: LoginStep) -> StepResult:
        idp = step.form.get("idp") or None
        if idp is not None and not self.has_choice(idp):
            return Refusal(SpidUnknownIdp("IdP not trusted or unknown"))
        return self.start(step, idp)

    def start(self, step: LoginStep, hint: str | None) -> Response | Refusal:
        """The IdP list, or with an IdP named the AuthnRequest to it."""
        if not hint:
            return self.services.pages.page(step.request, "spid_idps.html", {
                "tx": step.tx, "idps": self.choices()})
        idp = self.registry.get(hint)
        if idp is None:
            return Refusal(SpidUnknownIdp("IdP not trusted or unknown"))
        return self.send_request(step.auth, idp)

    async def logout(self, request: Request, event: AuthEvent, return_to: str
                     ) -> Response | None:
        return await self.slo.start(request, event, return_to)


def create_spid_provider(cfg: SpidConfig, services: ProviderServices) -> SpidProvider:
    return SpidProvider(cfg, services)


__all__ = ["SPID_LEVELS", "PendingRequest", "SpidProvider", "create_spid_provider",
           "required_acr"]
