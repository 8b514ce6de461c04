"""The broker on PostgreSQL: schema by ``varco db upgrade``, refusal when behind, a real login.

The production shape is Redis for what is hot and PostgreSQL for what must last; the
end-to-end test runs a PIN login through the real broker on uvicorn with both, and
checks that the lasting part landed in PostgreSQL and nothing in a local SQLite file.
That the migrated schema is the declared one is ``test_schema_drift.py``'s.
"""

from __future__ import annotations

import psycopg
import pytest

from broker.audit import AuditLog
from broker.config import StoreSettings, load_settings
from broker.errors import ConfigError
from broker.paths import project_dir
from broker.store.factory import build_database
from broker.store.migrate import head_revisions
from broker.store.postgres import PostgresDatabase
from tests.oidc.oidc_helpers import LAURA, PIN_LAURA, Browser, demo_rp
from tests.ops.sso import login_code
from tests.store.postgres_env import PostgresServer, db_upgrade

DEMO = project_dir("config") / "demo.yaml"


def test_the_broker_refuses_a_schema_that_is_not_at_head(
        postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch) -> None:
    url = postgres_server.create_database(template=None)  # an empty database
    try:
        monkeypatch.setenv("VARCO__STORE__DURABLE", "postgres")
        monkeypatch.setenv("VARCO_DATABASE_URL", url)
        settings = load_settings(DEMO)
        with pytest.raises(ConfigError, match="run `varco db upgrade`"):
            build_database(settings)
        first = db_upgrade(url)
        assert first.returncode == 0, first.stderr
        assert f"at revisions {', '.join(head_revisions())}" in first.stdout
        again = db_upgrade(url)  # idempotent: a second run changes nothing
        assert again.returncode == 0, again.stderr
        db = build_database(settings)
        assert tuple(sorted(r[0] for r in db.query("SELECT version_num FROM alembic_version"))) \
            == head_revisions() == ("0002", "eidas_0001", "pin_0001")  # broker's, providers'
        db.close()  # type: ignore[attr-defined]
        with psycopg.connect(url, autocommit=True) as conn:  # behind on one branch only
            conn.execute("DELETE FROM alembic_version WHERE version_num = 'pin_0001'")
        with pytest.raises(ConfigError,
                           match="at 0002, eidas_0001, the code needs 0002, eidas_0001, pin_0001"):
            build_database(settings)
    finally:
        postgres_server.drop_database(url)


def test_postgres_without_its_url_does_not_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VARCO__STORE__DURABLE", "postgres")
    monkeypatch.setenv("VARCO__STORE__EPHEMERAL", "redis")
    monkeypatch.delenv("VARCO_DATABASE_URL", raising=False)
    monkeypatch.delenv("VARCO_REDIS_URL", raising=False)
    with pytest.raises(ConfigError) as err:
        load_settings(DEMO)
    assert len(err.value.problems) == 2  # every problem at once
    assert "VARCO_DATABASE_URL is not set" in str(err.value)


@pytest.mark.integration
def test_a_pin_login_on_redis_and_postgres_keeps_the_lasting_part_in_postgres(
        broker_factory, redis_server, postgres_url, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("VARCO_REDIS_URL", redis_server.url)
    monkeypatch.setenv("VARCO_DATABASE_URL", postgres_url)
    data_dir = tmp_path / "pgdata"
    broker = broker_factory(data_dir=data_dir, store=StoreSettings(
        ephemeral="redis", redis_prefix="pg-e2e:", durable="postgres"))
    assert isinstance(broker.ctx.stores.db, PostgresDatabase)
    rp = demo_rp(broker.url)
    browser = Browser(broker.url)
    pending = rp.authorize_params()
    code = login_code(browser, pending, LAURA, PIN_LAURA)
    tokens = rp.exchange(browser.http, pending, code)
    assert tokens.status_code == 200, tokens.text
    assert browser.http.get(f"{broker.url}/readyz").status_code == 200

    check = PostgresDatabase(postgres_url)
    try:
        kinds = [r[0] for r in check.query("SELECT kind FROM audit ORDER BY seq")]
        holders = [r[0] for r in check.query("SELECT fiscal_code FROM pin_person")]
    finally:
        check.close()
    assert {"broker.start", "login.decision", "oidc.token"} <= set(kinds), kinds
    assert LAURA in holders  # the demo PIN users were seeded into PostgreSQL
    assert AuditLog(broker.ctx.stores.db, broker.clock).verify()[0]
    assert any(k.startswith("pg-e2e:session|") for k in redis_server.client().keys("pg-e2e:*"))
    assert not (data_dir / "varco.db").exists(), "nothing was written to a local SQLite file"


def test_an_unreachable_postgres_is_a_clear_start_error_without_the_password() -> None:
    with pytest.raises(ConfigError, match="cannot be reached") as err:
        PostgresDatabase("postgresql://varco:s3cret-pw@127.0.0.1:1/varco")
    assert "s3cret-pw" not in str(err.value)


def test_db_upgrade_on_the_embedded_store_has_nothing_to_do(capsys, monkeypatch) -> None:
    from broker.cli.main import main

    monkeypatch.delenv("VARCO__STORE__DURABLE", raising=False)
    assert main(["db", "upgrade", "--config", str(DEMO)]) == 0
    assert "nothing to upgrade" in capsys.readouterr().out
