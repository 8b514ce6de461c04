"""Concurrent presentations of one code or one refresh token: one wins, the family dies.

A stolen code or refresh token raced against the genuine client must never yield two
working token sets: exactly one request succeeds, and because the other was a replay,
what the winner got is revoked too.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.oidc.oidc_helpers import LAURA, PIN_LAURA, Browser, demo_rp

pytestmark = pytest.mark.integration
RACERS = 8


def _race(send) -> list[httpx.Response]:
    with ThreadPoolExecutor(RACERS) as pool:
        return list(pool.map(lambda _: send(), range(RACERS)))


def test_racing_one_code_yields_one_token_set_which_is_then_revoked(broker):
    rp = demo_rp(broker.url, scope="openid offline_access")
    browser = Browser(broker.url)
    pending = rp.authorize_params()
    code = browser.login_for_code(pending, LAURA, PIN_LAURA)

    def send() -> httpx.Response:
        with httpx.Client(base_url=broker.url, timeout=30) as http:
            return rp.exchange(http, pending, code)

    results = _race(send)
    winners = [r for r in results if r.status_code == 200]
    assert len(winners) == 1
    assert all(r.json()["error"] == "invalid_grant" for r in results if r not in winners)
    access = winners[0].json()["access_token"]
    userinfo = browser.http.get("/userinfo", headers={"Authorization": f"Bearer {access}"})
    assert userinfo.status_code == 401, "the replays revoked what the code issued"


def test_racing_one_refresh_token_revokes_the_family(broker):
    rp = demo_rp(broker.url, scope="openid offline_access")
    browser = Browser(broker.url)
    pending = rp.authorize_params()
    code = browser.login_for_code(pending, LAURA, PIN_LAURA)
    refresh = rp.exchange(browser.http, pending, code).json()["refresh_token"]

    def send() -> httpx.Response:
        with httpx.Client(base_url=broker.url, timeout=30) as http:
            return rp.refresh(http, refresh)

    results = _race(send)
    winners = [r for r in results if r.status_code == 200]
    assert len(winners) == 1
    rotated = winners[0].json()["refresh_token"]
    assert rp.refresh(browser.http, rotated).json()["error"] == "invalid_grant"
