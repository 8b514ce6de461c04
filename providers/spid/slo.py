"""SAML Single Logout for SPID (placeholder until SLO lands: answers 404 page)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import Request, Response

from broker.errors import NotFound
from broker.model import AuthEvent

if TYPE_CHECKING:
    from providers.spid.provider import SpidProvider


class SloRoutes:
    def __init__(self, provider: SpidProvider):
        self.provider = provider

    async def start(self, request: Request, event: AuthEvent, return_to: str) -> Response | None:
        return None

    async def endpoint(self, request: Request) -> Response:
        return self.provider.services.hub().fail(request, NotFound("SLO not implemented yet"))
