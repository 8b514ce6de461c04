"""Key rollover: published before it signs, old keys kept until their tokens expired.

Unit tests move a number as the clock; the end-to-end test moves the broker's
``FixedClock`` and watches what an RP sees over HTTP (JWKS and the kid of ID tokens),
while the running broker picks up the key folder change by itself.
"""

from __future__ import annotations

import time

import jwt
import pytest

from broker.cli.keys import listing, prune, rotate
from broker.cli.main import main
from broker.oidc.keys import KeyState, KeyStore
from broker.paths import project_dir
from tests.oidc.oidc_helpers import LAURA, PIN_LAURA, Browser, demo_rp
from tests.ops.sso import login_code, sso_code

T0 = 1_700_000_000
RETIRE = 360


def states(folder, now):
    return {(s.key.alg, s.key.created): s.state for s in listing(folder, now, RETIRE)}


def test_a_rotated_key_is_published_first_signs_later_and_retires_after_its_tokens(tmp_path):
    now = [float(T0)]
    store = KeyStore.load_or_create(tmp_path, now=T0, clock=lambda: now[0],
                                    retire_after=RETIRE)
    old = store.signing_key("ES256")
    now[0] = T0 + 100
    new = {k.alg: k for k in rotate(tmp_path, now[0], delay=600)}
    assert store.reload_if_changed() is True
    assert store.reload_if_changed() is False  # nothing changed since
    published = {k["kid"] for k in store.jwks()["keys"]}
    assert new["ES256"].kid in published and old.kid in published
    assert store.signing_key("ES256").kid == old.kid  # pending: published, not signing
    assert states(tmp_path, now[0])[("ES256", T0 + 700)] is KeyState.PENDING

    now[0] = T0 + 700  # the publication delay is over
    assert store.signing_key("ES256").kid == new["ES256"].kid
    assert store.by_kid(old.kid) is not None  # tokens it signed still verify
    assert states(tmp_path, now[0])[("ES256", T0)] is KeyState.PREVIOUS

    now[0] = T0 + 700 + RETIRE - 1
    assert old.kid in {k["kid"] for k in store.jwks()["keys"]}
    now[0] = T0 + 700 + RETIRE  # every token the old key signed has expired
    assert old.kid not in {k["kid"] for k in store.jwks()["keys"]}
    assert store.by_kid(old.kid) is None
    assert states(tmp_path, now[0])[("ES256", T0)] is KeyState.RETIRED
    assert {p.name for p in prune(tmp_path, now[0], RETIRE)} == {
        f"ES256-{T0}.pem", f"RS256-{T0}.pem"}
    assert len(list(tmp_path.glob("*.pem"))) == 2


def test_rotate_refuses_while_a_key_is_still_pending(tmp_path):
    KeyStore.load_or_create(tmp_path, now=T0)
    rotate(tmp_path, T0, delay=600)
    with pytest.raises(ValueError, match="already waiting"):
        rotate(tmp_path, T0 + 10, delay=600)
    assert len(list(tmp_path.glob("*.pem"))) == 4  # nothing added


def test_a_broken_key_file_never_replaces_the_keys_in_use(tmp_path, caplog):
    store = KeyStore.load_or_create(tmp_path, now=T0)
    kids = {k.kid for k in store.all()}
    (tmp_path / f"ES256-{T0 + 5}.pem").write_text("half a key")
    assert store.reload_if_changed() is False
    assert {k.kid for k in store.all()} == kids
    assert "reload refused" in caplog.text
    assert store.signing_key("ES256").created == T0


def test_the_command_line_rotates_and_lists(tmp_path, capsys):
    root = project_dir("config").parent
    config = tmp_path / "varco.yaml"
    config.write_text(f"data_dir: {tmp_path / 'data'}\nclients: {root / 'config/clients.demo.yaml'}"
                      f"\npolicies_dir: {root / 'policies'}\nmappings_dir: {root / 'mappings'}\n")
    KeyStore.load_or_create(tmp_path / "data" / "keys")
    assert main(["keys", "rotate", "--config", str(config), "--alg", "ES256"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ES256 ") and "signs from" in out
    assert main(["keys", "rotate", "--config", str(config), "--alg", "ES256"]) == 1
    assert "already waiting" in capsys.readouterr().out
    assert main(["keys", "list", "--config", str(config)]) == 0
    lines = capsys.readouterr().out.splitlines()[1:]
    assert sorted(line.split()[1] for line in lines) == ["active", "active", "pending"]


def _kid_of_a_fresh_id_token(broker, browser, rp) -> str:
    pending = rp.authorize_params()
    code = sso_code(browser, pending)  # single sign-on
    tokens = rp.exchange(browser.http, pending, code).json()
    kid: str = jwt.get_unverified_header(tokens["id_token"])["kid"]
    return kid


def _jwks_kids(http) -> set[str]:
    return {k["kid"] for k in http.get("/jwks").json()["keys"] if k["alg"] == "ES256"}


@pytest.mark.integration
def test_a_running_broker_follows_the_rotation(broker):
    http = broker.client()
    rp = demo_rp(broker.url)
    browser = Browser(broker.url)
    pending = rp.authorize_params()
    code = login_code(browser, pending, LAURA, PIN_LAURA)
    first = rp.exchange(browser.http, pending, code).json()
    old_kid = jwt.get_unverified_header(first["id_token"])["kid"]
    max_age = int(http.get("/jwks").headers["cache-control"].split("max-age=")[1])

    folder = broker.ctx.settings.data_dir / "keys"
    now = broker.clock.now().timestamp()
    new_kid = {k.alg: k.kid for k in rotate(folder, now)}["ES256"]
    waiting = [s.key for s in listing(folder, now, 0) if s.state is KeyState.PENDING]
    assert len(waiting) == 2 and all(k.created - now > max_age for k in waiting)
    deadline = time.monotonic() + 10  # the broker polls its key folder every 2 s
    while new_kid not in _jwks_kids(http):
        assert time.monotonic() < deadline, "new key never published"
        time.sleep(0.2)
    assert _kid_of_a_fresh_id_token(broker, browser, rp) == old_kid  # published, not used

    broker.clock.advance(seconds=2 * max_age + 1)
    assert _kid_of_a_fresh_id_token(broker, browser, rp) == new_kid
    assert _jwks_kids(http) == {old_kid, new_kid}  # old tokens still verifiable

    tok = broker.ctx.settings.tokens
    broker.clock.advance(seconds=max(tok.id_token_lifetime, 120) + tok.clock_skew)
    assert _jwks_kids(http) == {new_kid}
    # A hint signed by the retired key is no longer ours.
    page = browser.http.get("/logout", params={"id_token_hint": first["id_token"]})
    assert page.status_code == 400
