"""A real broker with SPID enabled and a real pysaml2 test IdP on its own uvicorn.

``SpidEnv`` starts the IdP standalone (``providers.saml.testidp.app.create_app``) on
127.0.0.1, drops its metadata into the broker's IdP folder, and drives a browser the
way a citizen does: RP authorize -> broker -> IdP login form -> auto-POST to the ACS
-> back at the RP with a code -> tokens.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
import secrets
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import jwt
import uvicorn

from providers.saml.testidp.app import create_app as create_idp_app
from providers.saml.testidp.idp import TestIdp

DEMO_RP, DEMO_SECRET = "demo-rp", "demo-rp-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spid_section(idp_dir: Path, **kw: Any) -> dict[str, Any]:
    return {"profile": "public", "ipa_code": "inps", "key_size": 2048,
            "organization": {"name": "Istituto Nazionale della Previdenza Sociale",
                             "display_name": "INPS", "url": "https://www.inps.it"},
            "contact": {"email": "spid@example.it", "phone": "+390612345678"},
            "idp_metadata_dir": str(idp_dir), **kw}


def serve(app: Any) -> tuple[str, uvicorn.Server, threading.Thread]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("server did not start")
        time.sleep(0.02)
    return f"http://127.0.0.1:{port}", server, thread


def cross_site_cookies(http: httpx.Client | httpx.AsyncClient, path: str) -> dict[str, str]:
    """The cookies of ``http``'s jar a browser sends on a POST from another site to
    ``path``: SameSite=None only, path-matched. (The jar would hold back Secure ones
    over http; Chromium sends them to 127.0.0.1, a potentially trustworthy origin.)"""
    sent = {}
    for cookie in http.cookies.jar:
        same_site = next((v for k, v in cookie._rest.items() if k.lower() == "samesite"), "")
        if (same_site or "").lower() == "none" and path.startswith(cookie.path):
            sent[cookie.name] = cookie.value or ""
    return sent


def form_fields(page: str) -> tuple[str, dict[str, str]]:
    action = re.search(r'<form method="post" action="([^"]+)"', page)
    assert action, page[:500]
    fields = {html.unescape(n): html.unescape(v) for n, v in
              re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page)}
    return html.unescape(action.group(1)), fields


@dataclass
class Login:
    """One authorization request in flight at the demo RP's registration."""

    state: str
    nonce: str
    verifier: str
    redirect_uri: str


class SpidBrowser:
    """One citizen's browser: cookie jar, no automatic redirects."""

    def __init__(self, env: SpidEnv):
        self.env = env
        self.http = httpx.Client(follow_redirects=False, timeout=30)

    def authorize(self, *, hint: str | None = None, **extra: str) -> tuple[Login, httpx.Response]:
        verifier = secrets.token_urlsafe(48)
        login = Login(secrets.token_urlsafe(12), secrets.token_urlsafe(12), verifier,
                      f"{self.env.broker.url}/demo-rp/callback")
        challenge = base64.urlsafe_b64encode(
            hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
        params = {"response_type": "code", "client_id": DEMO_RP,
                  "redirect_uri": login.redirect_uri, "scope": "openid profile fiscal_number",
                  "state": login.state, "nonce": login.nonce, "code_challenge": challenge,
                  "code_challenge_method": "S256",
                  "idp_hint": hint if hint is not None else f"spid:{self.env.idp.entity_id}",
                  **extra}
        r = self.http.get(f"{self.env.broker.url}/authorize?{urlencode(params)}")
        return login, r

    def follow(self, r: httpx.Response, stop_at: str) -> httpx.Response:
        for _ in range(10):
            if r.status_code not in (302, 303):
                return r
            loc = r.headers["location"]
            if loc.startswith("/"):
                loc = self.env.broker.url + loc
            if loc.startswith(stop_at):
                return r
            r = self.http.get(loc)
        raise AssertionError("redirect loop")

    def to_idp_form(self, r: httpx.Response) -> httpx.Response:
        page = self.follow(r, stop_at="\x00")
        assert page.status_code == 200, page.text[:500]
        assert 'name="username"' in page.text, page.text[:800]
        return page

    def idp_submit(self, page: httpx.Response, username: str, password: str = "test",
                   action: str = "login") -> httpx.Response:
        _, fields = form_fields(page.text)
        r = self.http.post(f"{self.env.idp.base_url}/login", data={
            "token": fields["token"], "username": username, "password": password,
            "action": action})
        return r

    def post_to_acs(self, idp_page: httpx.Response, *, cross_site: bool = False,
                    return_cookie: bool = True) -> httpx.Response:
        """POST the IdP's form to the ACS.

        ``cross_site`` posts it as a browser does from another site: without our
        SameSite=Lax cookies, with only the SameSite=None ones scoped to the ACS (the
        broker's return cookie). ``return_cookie=False`` is a browser that refused that
        cookie too (Secure on plain http): the broker then answers 303 to a GET of itself.
        """
        assert idp_page.status_code == 200, idp_page.text[:500]
        action, fields = form_fields(idp_page.text)
        assert action == f"{self.env.broker.url}/spid/acs"
        if cross_site:
            cookies = cross_site_cookies(self.http, urlsplit(action).path) \
                if return_cookie else {}
            with httpx.Client(timeout=30, cookies=cookies) as other_site:
                return other_site.post(action, data=fields)
        return self.http.post(action, data=fields)

    def login(self, username: str, **authorize: str) -> tuple[Login, httpx.Response]:
        """The whole front channel; returns the broker's answer after the ACS, followed."""
        login, r = self.authorize(**authorize)
        form = self.to_idp_form(r)
        acs = self.post_to_acs(self.idp_submit(form, username))
        return login, self.follow(acs, stop_at=login.redirect_uri)

    def tokens(self, login: Login, r: httpx.Response) -> dict[str, Any]:
        assert r.status_code in (302, 303), r.text[:800]
        q = {k: v[0] for k, v in parse_qs(urlsplit(r.headers["location"]).query).items()}
        assert q.get("state") == login.state and "code" in q, q
        tok = self.http.post(f"{self.env.broker.url}/token", auth=(DEMO_RP, DEMO_SECRET), data={
            "grant_type": "authorization_code", "code": q["code"],
            "redirect_uri": login.redirect_uri, "code_verifier": login.verifier})
        assert tok.status_code == 200, tok.text
        body = tok.json()
        jwks = self.http.get(f"{self.env.broker.url}/jwks").json()
        header = jwt.get_unverified_header(body["id_token"])
        key = next(k for k in jwks["keys"] if k.get("kid") == header.get("kid"))
        body["claims"] = jwt.decode(body["id_token"], jwt.PyJWK(key).key,
                                    algorithms=["ES256", "RS256"], audience=DEMO_RP,
                                    issuer=self.env.broker.url)
        assert body["claims"]["nonce"] == login.nonce
        return body


@dataclass
class SpidEnv:
    broker: Any  # tests.harness.RunningBroker
    idp: TestIdp
    idp_server: uvicorn.Server
    idp_dir: Path

    def browser(self) -> SpidBrowser:
        return SpidBrowser(self)

    def stop(self) -> None:
        self.idp_server.should_exit = True


def start_spid_env(broker_factory: Any, tmp_path: Path, **spid: Any) -> SpidEnv:
    idp_dir = tmp_path / "spid-idps"
    idp_dir.mkdir(exist_ok=True)
    from tests.harness import demo_settings

    base = demo_settings(tmp_path / "unused").providers
    holder: dict[str, str] = {}
    port = free_port()
    idp_url = f"http://127.0.0.1:{port}"
    app = create_idp_app(base_url=idp_url, data_dir=tmp_path / "testidp",
                         sp_metadata=lambda: httpx.get(holder["md"], timeout=10).content)
    idp: TestIdp = app.state.idp
    (idp_dir / "test-idp.xml").write_text(idp.metadata_xml())
    broker = broker_factory(providers={**base, "spid": spid_section(idp_dir, **spid)})
    holder["md"] = f"{broker.url}/spid/metadata"
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", access_log=False))
    threading.Thread(target=server.run, daemon=True).start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "IdP did not start"
        time.sleep(0.02)
    return SpidEnv(broker, idp, server, idp_dir)


@dataclass
class RunningLike:
    """The two fields of the lead's RunningBroker the SPID browser uses."""

    url: str
    ctx: Any
