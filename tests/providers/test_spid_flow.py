"""SPID end to end over real HTTP: RP -> broker -> pysaml2 test IdP -> ACS -> RP -> tokens."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from spid_env import SpidEnv, start_spid_env

pytestmark = pytest.mark.integration


@pytest.fixture
def spid(broker_factory, tmp_path: Path) -> Iterator[SpidEnv]:
    env = start_spid_env(broker_factory, tmp_path)
    yield env
    env.stop()


def test_spid_level2_login_gives_tokens_for_the_citizen(spid: SpidEnv):
    browser = spid.browser()
    login, r = browser.login("mario.rossi")
    body = browser.tokens(login, r)
    claims = body["claims"]
    assert claims["acr"] == "https://www.spid.gov.it/SpidL2"
    assert "spid" in claims["amr"]
    userinfo = browser.http.get(f"{spid.broker.url}/userinfo", headers={
        "Authorization": f"Bearer {body['access_token']}"}).json()
    assert userinfo.get("fiscal_number") == "RSSMRA80A01H501U", userinfo
