"""Health, readiness, metrics and request ids, over real HTTP against a real broker."""

from __future__ import annotations

import logging
import shutil
import time

import pytest

from broker.config import StoreSettings
from broker.paths import project_dir
from tests.oidc.oidc_helpers import LAURA, PIN_LAURA, Browser, demo_rp
from tests.ops.metrics_text import scrape, value
from tests.ops.sso import login_code
from tests.store.redis_env import start_redis

pytestmark = pytest.mark.integration


def test_healthz_and_readyz_on_a_healthy_broker(broker):
    http = broker.client()
    assert http.get("/healthz").json() == {"status": "ok"}
    ready = http.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json() == {"status": "ready", "problems": []}


def test_readyz_says_503_and_why_when_redis_is_down_and_citizens_get_a_page(
        broker_factory, tmp_path, monkeypatch):
    redis = start_redis(tmp_path / "redis")
    monkeypatch.setenv("VARCO_REDIS_URL", redis.url)
    broker = broker_factory(store=StoreSettings(ephemeral="redis"))
    http = broker.client()
    assert http.get("/readyz").status_code == 200
    redis.stop()
    ready = http.get("/readyz")
    assert ready.status_code == 503
    assert any(p.startswith("ephemeral store: redis PING failed") for p in
               ready.json()["problems"])
    assert http.get("/healthz").status_code == 200  # alive, just not ready
    rp = demo_rp(broker.url)
    page = Browser(broker.url).authorize(rp.authorize_params())
    assert page.status_code == 503  # a readable "try again later", not a stack trace
    assert "momentaneamente non disponibile" in page.text


def test_a_login_is_counted_by_provider_outcome_and_grant(broker):
    http = broker.client()
    before = scrape(http)
    rp = demo_rp(broker.url)
    browser = Browser(broker.url)
    pending = rp.authorize_params()
    code = login_code(browser, pending, LAURA, PIN_LAURA)
    assert rp.exchange(browser.http, pending, code).status_code == 200
    assert rp.exchange(browser.http, pending, code).status_code == 400  # replayed code
    after = scrape(http)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("varco_logins_total", provider="pin", outcome="allowed") == 1
    assert delta("varco_token_grants_total", grant_type="authorization_code",
                 outcome="issued") == 1
    assert delta("varco_token_grants_total", grant_type="authorization_code",
                 outcome="rejected") == 1
    routes = {dict(labels).get("route") for (name, labels) in after
              if name == "varco_http_request_duration_seconds_count"}
    assert {"/authorize", "/token", "/login/start/{name}"} <= routes
    assert not any(r and ("?" in r or "tx=" in r or r.startswith("/login/start/pin"))
                   for r in routes)  # templates, never raw paths or queries
    text = http.get("/metrics").text
    assert LAURA not in text and code not in text


def test_policy_reloads_are_counted(broker_factory, tmp_path):
    policies = tmp_path / "policies"
    shutil.copytree(project_dir("policies"), policies)
    broker = broker_factory(policies_dir=policies)
    http = broker.client()
    before = value(scrape(http), "varco_policy_reloads_total", outcome="refused")
    victim = sorted(policies.glob("*.yaml"))[0]
    victim.write_text(victim.read_text() + "\n  this: [is not valid\n")
    deadline = time.monotonic() + 10
    while value(scrape(http), "varco_policy_reloads_total", outcome="refused") == before:
        assert time.monotonic() < deadline, "reload never counted"
        time.sleep(0.2)
    assert http.get("/readyz").json()["policy_reload_refused"]  # says why; still ready
    assert http.get("/readyz").status_code == 200


def test_request_id_in_and_out_and_on_the_error_log_line(broker, caplog):
    http = broker.client()
    given = http.get("/healthz", headers={"X-Request-Id": "lb-7f3a.42"})
    assert given.headers["x-request-id"] == "lb-7f3a.42"
    fresh = http.get("/healthz")
    assert len(fresh.headers["x-request-id"]) == 16
    for bad in ("has space", "x" * 65, "new\tline"):
        out = http.get("/healthz", headers={"X-Request-Id": bad}).headers["x-request-id"]
        assert out != bad and len(out) == 16  # replaced, never echoed
    with caplog.at_level(logging.WARNING):
        page = http.get("/no/such/page", headers={"X-Request-Id": "trace-1234"})
    assert page.status_code == 404
    lines = [r for r in caplog.records if "error_id=" in r.getMessage()]
    assert lines and lines[-1].request_id == "trace-1234"
    error_id = lines[-1].getMessage().split("error_id=")[1].split()[0]
    assert error_id in page.text  # the citizen's error id and the request id meet
