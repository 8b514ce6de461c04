"""spid-sp-test authn plugin for the CIE profiles (no tests here: spid-sp-test imports it).

Like ``spid_sp_plugin.BrokerFlow`` (whose ``response`` it keeps), it walks the OIDC
front door with spid-sp-test's own session, but stops at ``/login/start/cie``: the CIE
provider has no IdP list, so that URL answers straight away with the signed
AuthnRequest for the single CIE IdP.
"""

from __future__ import annotations

from urllib.parse import urljoin

from spid_sp_plugin import BrokerFlow


class CieBrokerFlow(BrokerFlow):
    def request(self) -> str:
        url = self.url
        for _ in range(10):
            answer = self.session.get(url, allow_redirects=False)
            target = answer.headers.get("Location")
            if answer.status_code not in (302, 303) or not target:
                raise RuntimeError(f"broker answered {answer.status_code} before the AuthnRequest")
            if "SAMLRequest=" in target:  # /authorize started CIE itself (idp_hint=cie)
                return url
            url = urljoin(answer.url, target)
            if "/login/start/cie" in url:
                return url
        raise RuntimeError("no CIE AuthnRequest reached")
