"""A real broker with SPID and eIDAS on, and the pysaml2 test IdP playing FICEP on its own
uvicorn (the eIDAS node answers at the SPID ACS, so the SPID browser drives it).

``EidasEnv.idp`` is the FICEP stand-in: ``response_xml`` lets a test sign any answer to
a request the broker really sent (``authn_request`` reads it as FICEP would).
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
from tests.providers.spid_env import Login, SpidBrowser, serve

SCHMIDT_ID = "DE/IT/8472519036"
BIANCHI_ID = "FR/IT/18508914200123"
LAURA = "BNCLRA85M41Z404W"


class EidasBrowser(SpidBrowser):
    """A citizen's browser choosing "Login with eIDAS" (``idp_hint=eidas``)."""

    def authorize(self, *, hint: str | None = "eidas", **extra: str
                  ) -> tuple[Login, httpx.Response]:
        return super().authorize(hint=hint, **extra)

    def authn_request(self, r: httpx.Response) -> tuple[IdpRequest, dict[str, str]]:
        """Follow to FICEP's SSO URL and read the AuthnRequest as FICEP does (verified)."""
        redirect = self.follow(r, stop_at=self.env.idp.base_url)
        location = redirect.headers["location"]
        assert location.startswith(f"{self.env.idp.base_url}/sso?"), location
        q = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
        req = self.env.idp.parse_request(BINDING_HTTP_REDIRECT, q["SAMLRequest"],
                                         q.get("RelayState"), q.get("SigAlg"),
                                         q.get("Signature"))
        return req, q


@dataclass
class EidasEnv:
    broker: Any  # tests.harness.RunningBroker
    idp: TestIdp
    idp_server: uvicorn.Server
    idp_dir: Path

    def browser(self) -> EidasBrowser:
        return EidasBrowser(self)  # type: ignore[arg-type]

    def stop(self) -> None:
        self.idp_server.should_exit = True


def start_eidas_env(broker_factory: Any, tmp_path: Path, clients: Path | None = None,
                    **eidas: Any) -> EidasEnv:
    """The FICEP stand-in is served first (an empty app, so its URL is known), then
    filled in; the broker gets the demo's providers with eIDAS pointed at it."""
    idp_dir = tmp_path / "eidas-idps"
    idp_dir.mkdir(exist_ok=True)
    from tests.harness import demo_settings

    outer = FastAPI()
    idp_url, server, _ = serve(outer)
    holder: dict[str, str] = {}
    app = create_idp_app(base_url=idp_url, data_dir=tmp_path / "testidp-eidas",
                         profile="eidas",
                         sp_metadata=lambda: httpx.get(holder["md"], timeout=10).content)
    outer.mount("/", app)
    idp: TestIdp = app.state.idp
    (idp_dir / "ficep.xml").write_text(idp.metadata_xml())
    base = demo_settings(tmp_path / "unused").providers
    section = {**base["eidas"], "ficep_metadata_dir": str(idp_dir), "test_idp": False,
               **eidas}
    overrides: dict[str, Any] = {"providers": {**base, "eidas": section}}
    if clients is not None:
        overrides["clients"] = clients
    broker = broker_factory(**overrides)
    holder["md"] = f"{broker.url}/spid/metadata"
    return EidasEnv(broker, idp, server, idp_dir)
