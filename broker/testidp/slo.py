"""The test IdP's Single Logout endpoint (placeholder until SLO lands)."""

from __future__ import annotations

from fastapi import APIRouter

from broker.testidp.idp import TestIdp


def add_slo_routes(router: APIRouter, idp: TestIdp) -> None:
    """Add ``/slo``; see ``broker.testidp.app``."""
    return None
