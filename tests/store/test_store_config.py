"""The ``store`` settings and the 12-factor environment overrides, validated at start."""

from __future__ import annotations

import pytest

from broker.config import load_settings
from broker.errors import ConfigError
from broker.paths import project_dir
from tests.oidc.oidc_helpers import LAURA, PIN_LAURA, Browser, demo_rp
from tests.ops.sso import login_code

DEMO = project_dir("config") / "demo.yaml"


def test_default_is_the_embedded_store():
    assert load_settings(DEMO).store.ephemeral == "sqlite"


def test_environment_overrides_are_applied_and_validated(monkeypatch):
    monkeypatch.setenv("VARCO__STORE__EPHEMERAL", "redis")
    monkeypatch.setenv("VARCO__STORE__REDIS_URL_ENV", "MY_REDIS")
    monkeypatch.setenv("MY_REDIS", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("VARCO__TOKENS__ID_TOKEN_LIFETIME", "120")
    settings = load_settings(DEMO)
    assert settings.store.ephemeral == "redis"
    assert settings.store.redis_url_env == "MY_REDIS"
    assert settings.tokens.id_token_lifetime == 120


def test_every_bad_override_is_reported_at_once_with_its_variable(monkeypatch):
    monkeypatch.setenv("VARCO__STORE__EPHEMERAL", "memcached")
    monkeypatch.setenv("VARCO__TOKENS__ID_TOKEN_LIFETIM", "120")
    monkeypatch.setenv("VARCO__SESSION__LIFETIME", "-1")
    with pytest.raises(ConfigError) as err:
        load_settings(DEMO)
    text = str(err.value)
    assert len(err.value.problems) == 3, text
    assert "VARCO__STORE__EPHEMERAL" in text and "VARCO__TOKENS__ID_TOKEN_LIFETIM" in text
    assert "VARCO__SESSION__LIFETIME" in text


def test_redis_without_its_url_does_not_start(monkeypatch):
    monkeypatch.setenv("VARCO__STORE__EPHEMERAL", "redis")
    monkeypatch.delenv("VARCO_REDIS_URL", raising=False)
    with pytest.raises(ConfigError) as err:
        load_settings(DEMO)
    assert "VARCO_REDIS_URL is not set" in str(err.value)


@pytest.mark.integration
def test_a_broker_on_redis_logs_in_and_keeps_nothing_hot_in_sqlite(
        broker_factory, redis_server, monkeypatch):
    """A full PIN login and code exchange with every ephemeral value in Redis."""
    from broker.config import StoreSettings

    monkeypatch.setenv("VARCO_REDIS_URL", redis_server.url)
    broker = broker_factory(store=StoreSettings(ephemeral="redis", redis_prefix="e2e:"))
    rp = demo_rp(broker.url)
    browser = Browser(broker.url)
    pending = rp.authorize_params()
    code = login_code(browser, pending, LAURA, PIN_LAURA)
    tokens = rp.exchange(browser.http, pending, code)
    assert tokens.status_code == 200, tokens.text
    keys = redis_server.client().keys("e2e:*")
    assert any(k.startswith("e2e:session|") for k in keys)
    assert any(k.startswith("e2e:oidc:at|") for k in keys)
    tables = {r[0] for r in broker.ctx.stores.db.query("SELECT name FROM sqlite_master")}
    assert "ephemeral" not in tables  # nothing hot was written to the local file
