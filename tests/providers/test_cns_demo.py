"""``varco cns demo-certs``: the generated demo works end to end with the generated nginx.

The demo keeps the broker on plain http (the embedded demo) and adds only the nginx card
endpoint over TLS; a browser holding the generated PKCS#12 logs in, the revoked demo card
is refused.
"""

from __future__ import annotations

import ssl
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from broker.cli.main import main as varco
from broker.clock import FixedClock
from broker.config import load_settings
from providers.cns.cli import DEMO_PASSWORD, demo_certs
from providers.cns.nginx_conf import NginxLayout
from tests.cns.nginx_runner import Nginx
from tests.harness import free_port, start_broker
from tests.oidc.oidc_helpers import Browser, code_from, demo_rp

pytestmark = pytest.mark.integration


def card_context(folder: Path, name: str, tls_ca: Path) -> ssl.SSLContext:
    """What a browser does with the .p12: unlock it with the password, present it."""
    key, cert, extra = pkcs12.load_key_and_certificates(
        (folder / f"{name}.p12").read_bytes(), DEMO_PASSWORD.encode())
    assert key is not None and cert is not None and len(extra) == 2
    pem = folder / f"{name}-from-p12.pem"
    pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM)
                    + key.private_bytes(serialization.Encoding.PEM,
                                        serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()))
    context = ssl.create_default_context(cafile=str(tls_ca))
    context.load_cert_chain(str(pem))
    return context


def test_command_writes_files_and_keeps_them(tmp_path: Path, capsys) -> None:
    out = tmp_path / "demo-cns"
    assert varco(["cns", "demo-certs", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "mario-rossi.p12" in printed and "nginx -p" in printed
    for name in ("cns-ca.pem", "cns-intermediates.pem", "crl/root.crl", "crl/inter.crl",
                 "server.pem", "server.key", "mario-rossi.p12", "nginx/nginx.conf",
                 "varco-cns.yaml"):
        assert (out / name).is_file(), name
    assert (out / "server.key").stat().st_mode & 0o077 == 0
    ca = (out / "cns-ca.pem").read_bytes()
    assert varco(["cns", "demo-certs", "--out", str(out)]) == 0  # idempotent: same CA
    assert (out / "cns-ca.pem").read_bytes() == ca
    settings = load_settings(out / "varco-cns.yaml")
    assert settings.providers["cns"]["enabled"] is True


def test_demo_login_with_the_generated_card(tmp_path: Path) -> None:
    broker_port, card_port = free_port(), free_port()
    out = tmp_path / "demo-cns"
    settings_file = demo_certs(out, card_port=card_port, broker=f"127.0.0.1:{broker_port}")
    settings = load_settings(settings_file).model_copy(update={"data_dir": tmp_path / "data"})
    broker = start_broker(settings, FixedClock(datetime.now(UTC)), port=broker_port)
    layout = NginxLayout(prefix=out / "nginx", upstream=f"127.0.0.1:{broker_port}",
                         server_cert=out / "server.pem", server_key=out / "server.key",
                         card_port=card_port)
    nginx = Nginx(layout).start()
    try:
        rp = demo_rp(broker.url, scope="openid profile fiscal_number")
        for card, expect_ok in (("mario-rossi", True), ("anna-bianchi-revoked", False)):
            browser = Browser(broker.url)
            browser.http = httpx.Client(base_url=broker.url, follow_redirects=False,
                                        timeout=30,
                                        verify=card_context(out, card, out / "tls-ca.pem"))
            pending = rp.authorize_params(idp_hint="cns")
            page = browser.walk(browser.authorize(pending), rp.redirect_uri)
            assert page.status_code == 200
            link = page.text.split('id="cns-continue" href="', 1)[1].split('"', 1)[0]
            assert link.startswith(f"https://127.0.0.1:{card_port}/cns/tls?c=")
            final = browser.walk(browser.http.get(link), rp.redirect_uri)
            if expect_ok:
                code = code_from(final, pending)
                with httpx.Client() as http:
                    assert rp.exchange(http, pending, code).status_code == 200
            else:
                assert final.status_code == 403
                assert "revocato" in final.text
    finally:
        nginx.stop()
        broker.stop()
