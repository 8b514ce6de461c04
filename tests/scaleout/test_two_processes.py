"""Two broker processes behind nginx: any request may land on either, and one may die.

Real parts only: two ``varco serve`` subprocesses with one config (shared data folder,
Redis for the ephemeral state), a real nginx doing round robin, a real redis-server.
The tests share one cluster and run in file order; the crash test comes last.
"""

from __future__ import annotations

import html
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest

from broker.cli.keys import rotate
from broker.paths import project_dir
from tests.oidc.oidc_helpers import LAURA, PIN_LAURA, Browser, demo_rp, hidden
from tests.ops.metrics_text import scrape, value
from tests.ops.sso import sso_code, through_roles
from tests.scaleout.cluster import Cluster, upstream_port
from tests.store.redis_env import RedisServer

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory,
            redis_server: RedisServer) -> Iterator[Cluster]:
    folder = Path(tmp_path_factory.mktemp("cluster"))
    policies = folder / "policies"
    shutil.copytree(project_dir("policies"), policies)
    running = Cluster(folder, redis_server.url, policies=policies).start()
    yield running
    running.stop()


def test_requests_alternate_between_the_processes(cluster: Cluster):
    ports = {upstream_port(httpx.get(f"{cluster.url}/healthz")) for _ in range(6)}
    assert ports == {b.port for b in cluster.brokers}


def test_a_login_and_its_tokens_work_whichever_process_answers(cluster: Cluster):
    rp = demo_rp(cluster.url, scope="openid profile offline_access")
    browser = Browser(cluster.url)
    seen: set[int] = set()
    browser.http.event_hooks["response"] = [lambda r: seen.add(upstream_port(r))]
    pending = rp.authorize_params()
    code = through_roles(browser, browser.pin_login(browser.authorize(pending), LAURA,
                                                    PIN_LAURA, rp.redirect_uri), pending)
    tokens = rp.exchange(browser.http, pending, code).json()
    spent = []
    for _ in range(4):  # a refresh chain, every link possibly on another process
        refreshed = rp.refresh(browser.http, tokens["refresh_token"])
        assert refreshed.status_code == 200, refreshed.text
        spent.append(tokens["refresh_token"])
        tokens = refreshed.json()
    assert len(seen) == 2  # both processes took part
    # A spent refresh token replayed on any process revokes the family on every process.
    assert rp.refresh(browser.http, spent[0]).status_code == 400
    assert rp.refresh(browser.http, tokens["refresh_token"]).status_code == 400


def test_a_policy_change_reaches_every_process(cluster: Cluster):
    before = [value(scrape(httpx.Client(base_url=b.url)), "varco_policy_reloads_total",
                    outcome="ok") for b in cluster.brokers]
    assert cluster.policies is not None
    victim = sorted(cluster.policies.glob("*.yaml"))[0]
    victim.write_text(victim.read_text() + "\n# reviewed by the security team\n")
    deadline = time.monotonic() + 15
    for broker, was in zip(cluster.brokers, before, strict=True):
        http = httpx.Client(base_url=broker.url)
        while value(scrape(http), "varco_policy_reloads_total", outcome="ok") == was:
            assert time.monotonic() < deadline, f"process {broker.port} never reloaded"
            time.sleep(0.2)


def test_a_rotated_key_is_published_by_every_process(cluster: Cluster):
    folder = cluster.folder / "data" / "keys"
    new = {k.kid for k in rotate(folder, time.time())}
    deadline = time.monotonic() + 15
    for broker in cluster.brokers:
        while not new <= {k["kid"] for k in httpx.get(f"{broker.url}/jwks").json()["keys"]}:
            assert time.monotonic() < deadline, f"process {broker.port} never published it"
            time.sleep(0.2)


def test_a_process_dies_mid_login_and_the_citizen_finishes_on_the_other(cluster: Cluster):
    rp = demo_rp(cluster.url)
    browser = Browser(cluster.url)
    pending = rp.authorize_params()
    page = browser.walk(browser.authorize(pending), rp.redirect_uri)
    if 'name="pin"' not in page.text:  # the chooser first
        link = re.search(r'href="(/login/start/pin\?[^"]+)"', page.text)
        assert link is not None, page.text
        page = browser.walk(browser.http.get(html.unescape(link.group(1))), rp.redirect_uri)
    assert 'name="pin"' in page.text
    served_form = cluster.by_port(upstream_port(page))
    served_form.kill()  # crash after the PIN form was shown, before it is posted

    posted = browser.http.post("/pin/login", data={
        "csrf_token": hidden(page.text, "csrf_token"), "tx": hidden(page.text, "tx"),
        "fiscal_code": LAURA, "pin": PIN_LAURA})
    assert upstream_port(posted) != served_form.port
    code = through_roles(browser, posted, pending)
    tokens = rp.exchange(browser.http, pending, code)
    assert tokens.status_code == 200, tokens.text
    claims = jwt.decode(tokens.json()["id_token"], options={"verify_signature": False})
    assert claims["acr"] == "urn:varco:acr:pin" and claims["sid"]

    # The crashed process comes back: the session started elsewhere is valid there too.
    served_form.start()
    for _ in range(4):
        again = rp.authorize_params()
        assert sso_code(browser, again)
