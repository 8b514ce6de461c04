"""SPID for professional use (Avviso SPID n.18 v2): an RP registered for a professional
identity gets ``spid:Purpose`` in the AuthnRequest, the company attributes in the
Identity, and a readable page when the citizen's identity is not of that kind."""

from __future__ import annotations

import html
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from broker.errors import ConfigError
from broker.oidc.clients import load_clients
from broker.paths import project_dir
from tests.providers.spid_env import SpidEnv, start_spid_env

pytestmark = pytest.mark.integration


def _clients(tmp_path: Path, **options: Any) -> Path:
    registry = yaml.safe_load((project_dir("config") / "clients.demo.yaml").read_text())
    for client in registry["clients"]:
        if client["client_id"] == "demo-rp":
            client.update(options)
    path = tmp_path / "clients.yaml"
    path.write_text(yaml.safe_dump(registry))
    return path


@pytest.fixture
def desk(broker_factory: Any, tmp_path: Path) -> Iterator[SpidEnv]:
    """The demo RP registered as an intermediaries' desk: any professional identity."""
    clients = _clients(tmp_path, provider_options={"spid": {"purpose": "PX"}},
                       tags=["demo", "professional-identity"])
    env = start_spid_env(lambda **kw: broker_factory(clients=clients, **kw), tmp_path,
                         attributes=["spidCode", "name", "familyName", "fiscalNumber",
                                     "email", "companyName", "companyFiscalNumber",
                                     "ivaCode"])
    yield env
    env.stop()


def _request(env: SpidEnv) -> Any:
    from urllib.parse import parse_qs, urlsplit

    from saml2 import BINDING_HTTP_REDIRECT

    browser = env.browser()
    _, r = browser.authorize()
    redirect = browser.follow(r, stop_at=env.idp.base_url)
    q = {k: v[0] for k, v in parse_qs(urlsplit(redirect.headers["location"]).query).items()}
    return env.idp.parse_request(BINDING_HTTP_REDIRECT, q["SAMLRequest"], q.get("RelayState"),
                                 q.get("SigAlg"), q.get("Signature"))


def test_the_registered_purpose_goes_out_as_spid_purpose(desk: SpidEnv):
    assert _request(desk).purpose == "PX"


def test_a_legal_persons_professional_identity_brings_the_company(desk: SpidEnv):
    browser = desk.browser()
    login, r = browser.login("rossi.srl")
    tokens = browser.tokens(login, r)
    assert tokens["claims"]["fiscal_number"] == "RSSMRA80A01H501U"
    session = desk.broker.ctx.sessions.by_sid(browser.http.cookies["varco_session"])
    record = session.current
    assert record.event.attributes["purpose"] == "PX"
    assert record.identity.extra["company_fiscal_number"] == "01234567897"
    assert record.identity.extra["company_name"] == "Rossi Servizi S.r.l."
    assert record.identity.extra["iva_code"] == "01234567897"
    # a professional SPID is not a delega: no abilitazione comes from it
    assert tokens["claims"].get("abilitazioni", []) == []


def test_a_personal_identity_gets_error_30_as_a_readable_page(desk: SpidEnv):
    browser = desk.browser()
    _, r = browser.authorize()
    answer = browser.post_to_acs(browser.idp_submit(browser.to_idp_form(r), "mario.rossi"))
    page = html.unescape(answer.text)
    assert answer.status_code in (400, 403), page[:300]
    assert "uso professionale" in page and "location" not in answer.headers
    assert "Codice dell'errore" in page


def test_without_a_purpose_a_professional_only_identity_is_not_used(
        broker_factory: Any, tmp_path: Path):
    env = start_spid_env(broker_factory, tmp_path)
    try:
        assert _request(env).purpose is None  # an ordinary RP asks for none
        browser = env.browser()
        _, r = browser.authorize()
        answer = browser.post_to_acs(browser.idp_submit(browser.to_idp_form(r), "rossi.srl"))
        assert answer.status_code in (400, 403) and "uso professionale" in html.unescape(
            answer.text)
    finally:
        env.stop()


def test_a_purpose_typo_in_a_registration_stops_the_start(tmp_path: Path):
    with pytest.raises(ConfigError) as info:
        load_clients(_clients(tmp_path, provider_options={"spid": {"purpose": "PQ"}}),
                     "http://127.0.0.1")
    assert "provider_options.spid.purpose" in str(info.value)
    with pytest.raises(ConfigError) as info:
        load_clients(_clients(tmp_path, provider_options={"fax": {"x": "y"}}),
                     "http://127.0.0.1")
    assert "no such provider takes options" in str(info.value)
