"""Helpers: a real SP (our metadata, keys, AuthnRequest) and a real pysaml2 IdP, without the web.

``saml`` gives one IdP and SP pair per module; ``saml.request()`` sends a signed
AuthnRequest through the Redirect binding to the pysaml2 IdP (which verifies it) and
returns what the ACS would expect for it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from saml2 import BINDING_HTTP_REDIRECT

from providers.saml.idp_registry import IdpRegistry
from providers.saml.keys import KeyPair
from providers.saml.response import Expected
from providers.saml.testidp.idp import IdpRequest, TestIdp
from providers.saml.xmlutil import new_id
from providers.spid.authn import build_authn_request, encode_redirect
from providers.spid.certs import ensure_keys
from providers.spid.config import SpidConfig
from providers.spid.metadata import SpEndpoints, build_metadata
from providers.spid.provider import SPID_LEVELS

SP = SpEndpoints("https://sp.example.it/spid/metadata", "https://sp.example.it/spid/acs",
                 "https://sp.example.it/spid/slo")
IDP_ID = "https://idp.example.it"
L1, L2, L3 = (f"https://www.spid.gov.it/SpidL{n}" for n in (1, 2, 3))


def spid_config(**kw: Any) -> SpidConfig:
    base = dict(profile="public", ipa_code="inps",
                organization={"name": "Istituto Nazionale della Previdenza Sociale",
                              "display_name": "INPS", "url": "https://www.inps.it"},
                contact={"email": "spid@example.it", "phone": "+390612345678"})
    base.update(kw)
    return SpidConfig(**base)


@dataclass
class SamlPair:
    cfg: SpidConfig
    keys: KeyPair
    metadata: bytes
    idp: TestIdp
    registry: IdpRegistry
    idp_dir: Path

    def request(self, acr: str = L2) -> tuple[IdpRequest, Expected]:
        info = self.registry.get(IDP_ID)
        assert info is not None
        now = datetime.now(UTC).replace(microsecond=0)
        rid = new_id()
        location = info.sso[BINDING_HTTP_REDIRECT]
        xml = build_authn_request(request_id=rid, now=now, sp_entity_id=SP.entity_id,
                                  destination=location, acr=acr)
        url = encode_redirect(xml, location, "opaque-relay", self.keys)
        qs = {k: v[0] for k, v in parse_qs(urlparse(url).query).items()}
        req = self.idp.parse_request(BINDING_HTTP_REDIRECT, qs["SAMLRequest"],
                                     qs["RelayState"], qs["SigAlg"], qs["Signature"])
        exp = Expected(request_id=rid, request_instant=now, acs_url=SP.acs_url,
                       sp_entity_id=SP.entity_id, idp=info, now=datetime.now(UTC),
                       acr_levels=SPID_LEVELS, min_level=SPID_LEVELS[acr],
                       requested_attributes=frozenset(self.cfg.attributes),
                       required_attributes=frozenset(self.cfg.required_attributes))
        return req, exp

    @staticmethod
    def later(exp: Expected, **delta: float) -> Expected:
        return replace(exp, now=exp.now + timedelta(**delta))




def make_pair(d: Path) -> SamlPair:
    cfg = spid_config()
    keys = ensure_keys(key_path=d / "sp.key", cert_path=d / "sp.crt", entity_id=SP.entity_id,
                       profile="public", org_id="PA:IT-inps", org_name="INPS",
                       common_name="Varco", locality="Roma", now=datetime.now(UTC),
                       key_size=2048)
    metadata = build_metadata(cfg, SP, keys)
    idp = TestIdp(entity_id=IDP_ID, base_url=IDP_ID, key_dir=d / "idp",
                  sp_metadata=lambda: metadata)
    idp_dir = d / "idps"
    idp_dir.mkdir()
    (idp_dir / "test-idp.xml").write_text(idp.metadata_xml())
    registry = IdpRegistry(idp_dir, lambda: datetime.now(UTC))
    return SamlPair(cfg, keys, metadata, idp, registry, idp_dir)
