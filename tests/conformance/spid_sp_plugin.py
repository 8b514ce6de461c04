"""spid-sp-test authn plugin: reach the broker's AuthnRequest through the OIDC front door.

spid-sp-test GETs ``--authn-url`` once and wants a 302 carrying ``SAMLRequest``. The
broker only sends AuthnRequests for a pending OIDC login of this browser, so this
plugin walks ``/authorize`` -> ``/login/start/spid?...`` with spid-sp-test's own
``requests`` session (cookies kept) and hands back that last URL, which answers with
the signed AuthnRequest (or ``/authorize`` itself, when an ``idp_hint`` naming the IdP
made it start SPID at once). Responses are posted to the ACS with the same session and
followed to the relying party, whose answer (200 for a code, 403 for an error) is
what spid-sp-test judges.
"""

from __future__ import annotations

from urllib.parse import urljoin


class BrokerFlow:
    def __init__(self, session, authn_url, request_method="GET", request_body=None,
                 request_content_type="data"):
        self.session = session
        self.url = authn_url

    def request(self) -> str:
        r = self.session.get(self.url, allow_redirects=False)
        for _ in range(10):
            location = r.headers.get("Location")
            if r.status_code not in (302, 303) or not location:
                raise RuntimeError(f"broker answered {r.status_code} before the AuthnRequest")
            if "SAMLRequest=" in location:  # /authorize started SPID itself (idp_hint)
                return r.url
            location = urljoin(r.url, location)
            if "/login/start/spid" in location or "/spid/login" in location:
                return location
            r = self.session.get(location, allow_redirects=False)
        raise RuntimeError("no AuthnRequest reached")

    def response(self, url, data):
        return self.session.post(url, data=data, allow_redirects=True)
