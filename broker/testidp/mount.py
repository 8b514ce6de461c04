"""The test IdP inside the demo broker: one call builds the router to mount at ``/test-idp``.

The IdP's metadata is written to ``<data_dir>/spid-idps/test-idp.xml``, a folder the
SPID provider's IdP registry reads next to the configured one, so the demo trusts it
without touching ``config/``. The SP metadata is read in process (no HTTP to itself).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fastapi import APIRouter

from broker.testidp.app import test_idp_router
from broker.testidp.idp import TestIdp

PREFIX = "/test-idp"


def demo_test_idp(issuer: str, data_dir: Path,
                  sp_metadata: Callable[[], bytes | str]) -> tuple[APIRouter, TestIdp]:
    """Router (mount it at ``PREFIX``) and the IdP; writes the IdP metadata for the SP."""
    base = issuer.rstrip("/") + PREFIX
    idp = TestIdp(entity_id=base, base_url=base, key_dir=Path(data_dir) / "testidp",
                  sp_metadata=sp_metadata)
    folder = Path(data_dir) / "spid-idps"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "test-idp.xml").write_text(idp.metadata_xml())
    return test_idp_router(idp), idp
