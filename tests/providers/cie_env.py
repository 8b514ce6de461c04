"""A real broker with CIE enabled and the pysaml2 test IdP playing CIE ID on its own uvicorn.

Reuses the SPID browser (``spid_env.SpidBrowser``: authorize, follow, IdP form, tokens)
with the CIE differences: ``idp_hint=cie`` and the ACS at ``/cie/acs``. ``authn_request``
reads the signed AuthnRequest the broker sends, the way the IdP receives it, so tests
can have the IdP answer with any status or a tampered response.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import uvicorn
from fastapi import FastAPI
from saml2 import BINDING_HTTP_REDIRECT

from providers.saml.testidp.app import create_app as create_idp_app
from providers.saml.testidp.idp import IdpRequest, TestIdp
from tests.providers.spid_env import SpidBrowser, form_fields, serve


def cie_section(idp_dir: Path, **kw: Any) -> dict[str, Any]:
    return {"profile": "public", "ipa_code": "inps", "municipality": "H501", "key_size": 2048,
            "organization": {"name": "Istituto Nazionale della Previdenza Sociale",
                             "display_name": "INPS", "url": "https://www.inps.it"},
            "contact": {"email": "cie@example.it", "phone": "+390612345678"},
            "idp_metadata_dir": str(idp_dir), **kw}


class CieBrowser(SpidBrowser):
    """A citizen's browser logging in with CIE."""

    def authorize(self, *, hint: str | None = "cie", **extra: str):
        return super().authorize(hint=hint, **extra)

    def post_to_acs(self, idp_page: httpx.Response, *, cross_site: bool = False
                    ) -> httpx.Response:
        assert idp_page.status_code == 200, idp_page.text[:500]
        action, fields = form_fields(idp_page.text)
        assert action == f"{self.env.broker.url}/cie/acs"
        return self.post_fields(fields, cross_site=cross_site)

    def post_fields(self, fields: dict[str, str], *, cross_site: bool = False) -> httpx.Response:
        url = f"{self.env.broker.url}/cie/acs"
        if cross_site:
            with httpx.Client(timeout=30) as cookieless:
                return cookieless.post(url, data=fields)
        return self.http.post(url, data=fields)

    def authn_request(self, r: httpx.Response) -> tuple[IdpRequest, dict[str, str]]:
        """Follow to the IdP's SSO URL and read the AuthnRequest as the IdP does (verified)."""
        redirect = self.follow(r, stop_at=self.env.idp.base_url)
        location = redirect.headers["location"]
        assert location.startswith(f"{self.env.idp.base_url}/sso?"), location
        q = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
        req = self.env.idp.parse_request(BINDING_HTTP_REDIRECT, q["SAMLRequest"],
                                         q.get("RelayState"), q.get("SigAlg"), q.get("Signature"))
        return req, q


@dataclass
class CieEnv:
    broker: Any  # tests.harness.RunningBroker
    idp: TestIdp
    idp_server: uvicorn.Server
    idp_dir: Path

    def browser(self) -> CieBrowser:
        return CieBrowser(self)  # type: ignore[arg-type]

    def stop(self) -> None:
        self.idp_server.should_exit = True


def start_cie_env(broker_factory: Any, tmp_path: Path, **cie: Any) -> CieEnv:
    """The IdP is served first (an empty app, so its URL is known), then filled in."""
    idp_dir = tmp_path / "cie-idps"
    idp_dir.mkdir(exist_ok=True)
    from tests.harness import demo_settings

    outer = FastAPI()
    idp_url, server, _ = serve(outer)
    holder: dict[str, str] = {}
    app = create_idp_app(base_url=idp_url, data_dir=tmp_path / "testidp-cie", profile="cie",
                         sp_metadata=lambda: httpx.get(holder["md"], timeout=10).content)
    outer.mount("/", app)
    idp: TestIdp = app.state.idp
    (idp_dir / "test-idp-cie.xml").write_text(idp.metadata_xml())
    base = demo_settings(tmp_path / "unused").providers
    broker = broker_factory(providers={**base, "cie": cie_section(idp_dir, **cie)})
    holder["md"] = f"{broker.url}/cie/metadata"
    return CieEnv(broker, idp, server, idp_dir)
