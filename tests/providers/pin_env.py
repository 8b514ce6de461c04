"""A broker whose PIN outbox talks to real peers: an SMTP sink and an HTTP SMS gateway.

``PinEnv`` starts both on 127.0.0.1, starts the broker (demo config, demo PIN users) with
the PIN provider's channels pointing at them, and gives a ``Citizen`` browser that fills
the lifecycle forms the way a person does (GET the page, read the CSRF token, POST).
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from broker.fiscal_code import check_character
from tests.outbox.outbox_sinks import SmsGateway, SmtpSink, body

__all__ = ["BACKOFFICE", "Citizen", "PinEnv", "body", "letters", "make_cf", "start_pin_env"]

BACKOFFICE = ("backoffice", "backoffice-secret")


def make_cf(first15: str) -> str:
    """A valid codice fiscale from its first 15 characters."""
    return first15 + check_character(first15)


@dataclass
class PinEnv:
    broker: Any
    smtp: SmtpSink
    sms: SmsGateway
    data_dir: Path

    @property
    def provider(self) -> Any:
        return self.broker.ctx.providers["pin"]

    def citizen(self) -> Citizen:
        return Citizen(self.broker.client())

    def admin(self) -> httpx.Client:
        return httpx.Client(base_url=self.broker.url, auth=BACKOFFICE, timeout=30)

    def deliver(self) -> int:
        """Run the outbox once now (the worker thread would within a second anyway)."""
        delivered: int = self.provider.worker.run_once()
        return delivered

    def stop(self) -> None:
        self.smtp.stop()
        self.sms.stop()


def letters(env: PinEnv) -> list[Path]:
    return sorted((env.data_dir / "outbox" / "letters").glob("*.pdf"))


def start_pin_env(broker_factory: Any, tmp_path: Path, clock: Any = None,
                  **pin: Any) -> PinEnv:
    smtp = SmtpSink().start()
    gateway = SmsGateway().start()
    from broker.config import load_settings
    from broker.paths import project_dir

    # Not ``from conftest import ...``: several test folders have a conftest module.
    base = load_settings(project_dir("config") / "demo.yaml").providers
    data_dir = tmp_path / "pin-data"
    section = {**base.get("pin", {}), "outbox": {"email": smtp.channel(), "pec": smtp.channel(),
                                                 "sms": gateway.channel(),
                                                 "poll_seconds": 0.2}, **pin}
    broker = broker_factory(clock=clock, data_dir=data_dir, providers={**base, "pin": section})
    return PinEnv(broker, smtp, gateway, data_dir)


def hidden(page: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert match, f"no hidden field {name}"
    return html.unescape(match.group(1))


def fact(page: str, label_text: str | None = None) -> list[str]:
    """The values the notice page shows in bold (practice number, telephone PIN)."""
    return [html.unescape(v) for v in re.findall(r'<strong class="fact">([^<]*)</strong>', page)]


class Citizen:
    """One browser on the PIN pages."""

    def __init__(self, http: httpx.Client):
        self.http = http

    def csrf(self, path: str = "/pin/request") -> str:
        page = self.http.get(path)
        assert page.status_code in (200, 403), page.text[:300]
        return hidden(page.text, "csrf_token")

    def post(self, path: str, data: dict[str, str], files: Any = None) -> httpx.Response:
        token = self.csrf(path if path != "/pin/recovery/confirm" else "/pin/recovery")
        return self.http.post(path, data={"csrf_token": token, **data}, files=files)


def request_form(cf: str, **over: str) -> dict[str, str]:
    return {"fiscal_code": cf, "given_name": "Luca", "family_name": "Martini",
            "residence": "abroad", "italian_document": "no", "street": "1 Main Street",
            "postal_code": "02110", "city": "Boston MA", "country": "USA",
            "mobile_phone": "+1 555 0100 99", "email": "luca.martini@example.org", "pec": "",
            "first_half_channel": "sms", "health_card_number": "80380000000000000001",
            "health_card_expiry": "2031-01-31", **over}


def login_form(broker: Any, http: httpx.Client | None = None,
               hint: str = "pin") -> tuple[httpx.Client, str, str]:
    """A login started at the demo RP, standing on the PIN form: (browser, tx, csrf)."""
    http = http or broker.client()
    page = http.get("/demo-rp/login", params={"idp_hint": hint}, follow_redirects=True)
    assert page.status_code == 200 and 'name="pin"' in page.text, page.text[:500]
    return http, hidden(page.text, "tx"), hidden(page.text, "csrf_token")


def pin_login(broker: Any, cf: str, pin: str,
              http: httpx.Client | None = None) -> tuple[httpx.Client, httpx.Response]:
    http, tx, csrf = login_form(broker, http)
    return http, http.post("/pin/login", data={"csrf_token": csrf, "tx": tx,
                                               "fiscal_code": cf, "pin": pin})


def choose_new_pin(http: httpx.Client, page: httpx.Response, new_pin: str) -> httpx.Response:
    assert page.status_code == 200 and 'name="change_token"' in page.text, page.text[:500]
    return http.post("/pin/new-pin", data={
        "csrf_token": hidden(page.text, "csrf_token"), "tx": hidden(page.text, "tx"),
        "change_token": hidden(page.text, "change_token"), "new_pin": new_pin,
        "new_pin_confirm": new_pin})


def first_half_in(text: str) -> str:
    match = re.search(r"(?:prima parte|PRIMA PARTE del tuo PIN \(8 caratteri\):)\s+([A-Z0-9]{8})",
                      text)
    assert match, text
    return match.group(1)


def half_in_email(text: str) -> str:
    match = re.search(r"SECONDA PARTE:\s+([A-Z2-9]{8})\s", text)
    assert match, text
    return match.group(1)


def letter_text(path: Path) -> str:
    from pypdf import PdfReader

    return "\n".join(p.extract_text() for p in PdfReader(path).pages)


def half_in_letter(path: Path) -> str:
    match = re.search(r"((?:[A-Z2-9] ){7}[A-Z2-9])\s*$", letter_text(path).strip())
    assert match, letter_text(path)
    return match.group(1).replace(" ", "")


def start_spid_for_pin(broker_factory: Any, tmp_path: Path) -> Any:
    """``spid_env.start_spid_env`` without importing ``conftest`` by name (several test
    folders define one), plus the PIN admin router: a SPID test IdP and a broker."""
    import threading
    import time

    import uvicorn

    from broker.config import load_settings
    from broker.paths import project_dir
    from providers.saml.testidp.app import create_app as create_idp_app
    from tests.providers.spid_env import SpidEnv, free_port, spid_section

    idp_dir = tmp_path / "spid-idps"
    idp_dir.mkdir(exist_ok=True)
    base = load_settings(project_dir("config") / "demo.yaml").providers
    holder: dict[str, str] = {}
    port = free_port()
    app = create_idp_app(base_url=f"http://127.0.0.1:{port}", data_dir=tmp_path / "testidp",
                         sp_metadata=lambda: httpx.get(holder["md"], timeout=10).content)
    idp = app.state.idp
    (idp_dir / "test-idp.xml").write_text(idp.metadata_xml())
    broker = broker_factory(providers={**base, "spid": spid_section(idp_dir)})
    holder["md"] = f"{broker.url}/spid/metadata"
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", access_log=False))
    threading.Thread(target=server.run, daemon=True).start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "IdP did not start"
        time.sleep(0.02)
    return SpidEnv(broker, idp, server, idp_dir)
