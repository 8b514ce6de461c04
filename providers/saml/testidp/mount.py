"""The test IdP inside the demo broker: one call builds the router to mount at ``/test-idp``.

The IdP's metadata is written to ``<data_dir>/spid-idps/test-idp.xml``, a folder the
SPID provider's IdP registry reads next to the configured one, so the demo trusts it
without touching ``config/``. The SP metadata is read in process (no HTTP to itself).
With ``profile="cie"`` a second entity plays CIE ID at ``/test-idp-cie``, its metadata
in ``<data_dir>/cie-idps/test-idp-cie.xml`` for the CIE provider.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fastapi import APIRouter

from providers.saml.testidp.app import test_idp_router
from providers.saml.testidp.idp import TestIdp

PREFIX = "/test-idp"
PREFIX_CIE = "/test-idp-cie"
# profile -> (mount point, key folder under data_dir, metadata folder the provider reads)
PREFIX_EIDAS = "/test-idp-eidas"
PLACES = {"spid": (PREFIX, "testidp", "spid-idps"), "cie": (PREFIX_CIE, "testidp-cie", "cie-idps"),
          "eidas": (PREFIX_EIDAS, "testidp-eidas", "eidas-idps")}


def demo_test_idp(issuer: str, data_dir: Path, sp_metadata: Callable[[], bytes | str],
                  profile: str = "spid") -> tuple[APIRouter, TestIdp]:
    """Router (mount it at ``PREFIX`` or ``PREFIX_CIE``) and the IdP; writes its metadata."""
    prefix, keys, idps = PLACES[profile]
    base = issuer.rstrip("/") + prefix
    idp = TestIdp(entity_id=base, base_url=base, key_dir=Path(data_dir) / keys,
                  sp_metadata=sp_metadata, profile=profile)
    folder = Path(data_dir) / idps
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{prefix.strip('/')}.xml").write_text(idp.metadata_xml())
    return test_idp_router(idp), idp
