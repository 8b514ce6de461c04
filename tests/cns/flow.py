"""The CNS test bench: a broker behind a real nginx (main site and card endpoint over TLS).

``start_cns_env`` builds the test PKI, starts a broker (issuer ``https://127.0.0.1:<main>``)
with the ``cns`` provider pointing at it, and nginx in front with the shipped snippets.
``CardBrowser`` is one browser (cookie jar) holding one card (or none): it walks the OIDC
flow over real TLS, presenting the card only when the card endpoint asks for it.
"""

from __future__ import annotations

import html
import re
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from providers.cns.nginx_conf import NginxLayout
from tests.cns.nginx_runner import Nginx
from tests.cns.pki_env import Card, CnsPki, build_pki, standard_cards
from tests.harness import RunningBroker, free_port
from tests.oidc.oidc_helpers import RP, Browser, Pending, code_from, demo_rp


@dataclass
class CnsEnv:
    pki: CnsPki
    broker: RunningBroker
    nginx: Nginx
    issuer: str
    card_url: str

    def browser(self, card: Card | None = None) -> CardBrowser:
        return CardBrowser(self, card)

    def rp(self) -> RP:
        return demo_rp(self.issuer, scope="openid profile fiscal_number")

    def http(self) -> httpx.Client:
        """A back-channel client (the RP's server) that trusts the test TLS CA."""
        return httpx.Client(verify=ssl.create_default_context(cafile=str(self.pki.tls_ca_pem)),
                            timeout=30)

    def stop(self) -> None:
        self.nginx.stop()


def cns_section(env: CnsPki, card_url: str, **overrides: Any) -> dict[str, Any]:
    return {"tls_url": card_url, "trusted_proxies": ["127.0.0.1"],
            "ca_bundle": str(env.ca_bundle), "intermediates": str(env.intermediates),
            "crls": [str(env.crl_dir)], **overrides}


def start_cns_env(broker_factory: Callable[..., RunningBroker], folder: Path, clock,
                  **cns_overrides: Any) -> CnsEnv:
    pki_env = build_pki(folder / "pki", clock.now())
    standard_cards(pki_env)
    main_port, card_port = free_port(), free_port()
    issuer = f"https://127.0.0.1:{main_port}"
    card_url = f"https://127.0.0.1:{card_port}/cns/tls"
    broker = broker_factory(clock, issuer=issuer, providers={
        "cns": cns_section(pki_env, card_url, **cns_overrides)})
    layout = NginxLayout(prefix=folder / "nginx", upstream=broker.url.removeprefix("http://"),
                         server_cert=pki_env.server_cert, server_key=pki_env.server_key,
                         card_port=card_port, main_port=main_port)
    layout.prefix.mkdir(parents=True, exist_ok=True)
    nginx = Nginx(layout).start()
    return CnsEnv(pki_env, broker, nginx, issuer, card_url)


class CardBrowser(Browser):
    """A browser over TLS that trusts the test server CA and may hold one card."""

    def __init__(self, env: CnsEnv, card: Card | None):
        super().__init__(env.issuer)
        self.http.close()
        context = ssl.create_default_context(cafile=str(env.pki.tls_ca_pem))
        if card is not None:
            context.load_cert_chain(str(card.cert), str(card.key))
        self.env = env
        self.http = httpx.Client(base_url=env.issuer, follow_redirects=False, timeout=30,
                                 verify=context)

    def start_page(self, pending: Pending) -> httpx.Response:
        """authorize -> the CNS page ("insert the card, then continue")."""
        page = self.walk(self.authorize(pending), pending.rp.redirect_uri)
        assert page.status_code == 200, page.text[:500]
        return page

    @staticmethod
    def card_link(page: httpx.Response) -> str:
        match = re.search(r'id="cns-continue" href="([^"]+)"', page.text)
        assert match, page.text[:1000]
        return html.unescape(match.group(1))

    def present(self, link: str, stop_at: str) -> httpx.Response:
        """Follow the card link (TLS handshake with the card) and the redirects after it."""
        return self.walk(self.http.get(link), stop_at)

    def login(self, pending: Pending) -> httpx.Response:
        page = self.start_page(pending)
        return self.present(self.card_link(page), pending.rp.redirect_uri)

    def login_for_code(self, pending: Pending) -> str:  # type: ignore[override]
        return code_from(self.login(pending), pending)
