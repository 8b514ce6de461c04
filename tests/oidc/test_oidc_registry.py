"""The client registry file and the requirement rules: pure functions, table-driven."""

from __future__ import annotations

import hashlib
import textwrap

import pytest

from broker.errors import ConfigError
from broker.model import Privilege
from broker.oidc.claims import requirement, subject
from broker.oidc.clients import load_clients
from broker.paths import project_dir
from providers.cns.acr import ACR_CNS
from providers.pin.acr import ACR_PIN
from providers.spid.levels import ACR_SPID_L1, ACR_SPID_L2, ACR_SPID_L3

ISSUER = "http://127.0.0.1:8123"
D = Privilege.DISPOSITIVO


def test_demo_registry_loads_and_resolves_the_issuer():
    registry = load_clients(project_dir("config") / "clients.demo.yaml", ISSUER)
    demo = registry.get("demo-rp")
    pension = registry.get("pension-portal")
    assert demo is not None and pension is not None
    assert demo.redirect_uris == (f"{ISSUER}/demo-rp/callback",)
    assert demo.check_client_secret("demo-rp-secret")
    assert not demo.check_client_secret("demo-rp-secret ")
    assert not demo.check_client_secret("")
    assert pension.config.required_privilege is D
    assert registry.get("nobody") is None


def test_every_problem_is_reported_at_once_with_file_line_and_key(tmp_path, monkeypatch):
    monkeypatch.delenv("NO_SUCH_SECRET_VAR", raising=False)
    path = tmp_path / "clients.yaml"
    path.write_text(textwrap.dedent(f"""\
        clients:
          - client_id: ok
            name: OK
            secret_hash: "sha256:{hashlib.sha256(b'x').hexdigest()}"
            redirect_uris: ["https://rp.example/cb"]
          - client_id: typo
            name: Typo
            secret_hash: "sha256:{'0' * 64}"
            redirect_uri: ["https://rp.example/cb"]
          - client_id: weak
            name: Weak
            secret_hash: "md5:abc"
            redirect_uris: ["http://rp.example/cb", "https://rp.example/cb#frag"]
            scopes: [profile, everything]
          - client_id: nosecret
            name: No secret
            secret_env: NO_SUCH_SECRET_VAR
            redirect_uris: ["https://rp.example/cb"]
          - client_id: ok
            name: Duplicate
            secret_hash: "sha256:{'1' * 64}"
            redirect_uris: ["https://rp.example/cb"]
        """))
    with pytest.raises(ConfigError) as err:
        load_clients(path, ISSUER)
    text = str(err.value)
    assert f"{path}:6: clients[1]" in text and "redirect_uri" in text  # unknown key
    assert f"{path}:10: clients[2]" in text
    for fragment in ("secret_hash must look like", "http is allowed only",
                     "must not contain a fragment", "scopes must include openid",
                     "unknown scopes", "NO_SUCH_SECRET_VAR is not set", "duplicate 'ok'"):
        assert fragment in text, fragment


def test_private_key_jwt_clients_need_public_keys_only(tmp_path):
    path = tmp_path / "clients.yaml"
    path.write_text(textwrap.dedent("""\
        clients:
          - client_id: leaky
            name: Leaky
            token_endpoint_auth_method: private_key_jwt
            jwks: {keys: [{kty: EC, crv: P-256, x: a, y: b, d: secret}]}
            redirect_uris: ["https://rp.example/cb"]
          - client_id: both
            name: Both
            token_endpoint_auth_method: private_key_jwt
            jwks_file: keys.json
            secret_env: X
            redirect_uris: ["https://rp.example/cb"]
        """))
    with pytest.raises(ConfigError) as err:
        load_clients(path, ISSUER)
    assert "public JWK" in str(err.value) and "clients[1]" in str(err.value)


@pytest.mark.parametrize(("acr_values", "claims", "registered", "want"), [
    ((), None, None, (None, None)),
    ((ACR_PIN,), None, None, (None, None)),
    ((ACR_SPID_L1,), None, Privilege.ORDINARIO, (Privilege.ORDINARIO, None)),
    ((ACR_SPID_L2,), None, None, (D, None)),  # a dispositivo PIN satisfies SpidL2
    ((ACR_SPID_L3,), None, None, (D, ACR_SPID_L3)),
    ((ACR_CNS,), None, None, (D, ACR_CNS)),
    ((ACR_SPID_L3, ACR_SPID_L2), None, None, (D, None)),  # alternatives: the lowest
    ((ACR_PIN, ACR_SPID_L3), None, None, (None, None)),
    (("urn:unknown",), None, None, (None, None)),
    ((), {"id_token": {"privilege": {"value": "dispositivo"}}}, None, (D, None)),
    ((), {"userinfo": {"privilege": {"values": ["ordinario", "dispositivo"]}}}, None,
     (None, None)),
    ((), {"id_token": {"acr": {"essential": True, "values": [ACR_SPID_L3]}}}, None,
     (D, ACR_SPID_L3)),
    ((), {"id_token": {"acr": {"values": [ACR_SPID_L3]}}}, None, (None, None)),  # voluntary
    ((), None, D, (D, None)),  # the registration is a floor
    ((ACR_PIN,), None, D, (D, None)),
])
def test_requirement_table(acr_values, claims, registered, want):
    assert requirement(acr_values, claims, registered) == want


def test_subjects_are_pairwise_or_public_and_never_the_fiscal_code():
    key, cf = b"k" * 32, "BNCLRA85M41Z404W"
    a = subject(key, cf, subject_type="pairwise", sector="rp-a")
    b = subject(key, cf, subject_type="pairwise", sector="rp-b")
    pub = subject(key, cf, subject_type="public", sector="rp-a")
    assert len({a, b, pub}) == 3 and cf not in a + b + pub
    assert pub == subject(key, cf, subject_type="public", sector="rp-b")
    assert a != subject(b"j" * 32, cf, subject_type="pairwise", sector="rp-a")


def test_a_person_without_codice_fiscale_gets_their_identifier_and_a_sub_of_it():
    from datetime import UTC, datetime, timedelta

    from broker.model import (
        AuthEvent,
        BrokerSession,
        Decision,
        Identity,
        LoginRecord,
    )
    from broker.oidc.claims import UserSnapshot, released_claims, user_key

    now = datetime(2026, 12, 1, tzinfo=UTC)
    identity = Identity(identifiers={"eidas": "DE/IT/0123456789"}, given_name="Anke",
                        date_of_birth=datetime(1980, 2, 3).date())
    event = AuthEvent(provider="x", subject="s", acr="a", amr=("x",), auth_time=now)
    session = BrokerSession(sid="s", created_at=now, expires_at=now + timedelta(hours=1),
                            logins=(LoginRecord(event=event, identity=identity,
                                                decision=Decision(allow=True)),))
    user = UserSnapshot.of(session)
    assert user.fiscal_code is None and user_key(user) == "eidas:DE/IT/0123456789"
    sub = subject(b"k" * 32, user_key(user), subject_type="pairwise", sector="rp")
    claims = released_claims(user, sub, ("openid", "profile", "fiscal_number"), None, ())
    assert "fiscal_number" not in claims
    assert claims["eidas_person_identifier"] == "DE/IT/0123456789"
    assert claims["birthdate"] == "1980-02-03" and claims["given_name"] == "Anke"
    without_scope = released_claims(user, sub, ("openid",), None, ())
    assert "eidas_person_identifier" not in without_scope
    # The same person with a codice fiscale keeps the codice fiscale's sub (a link kept).
    linked = Identity(fiscal_code="RSSMRA80A01H501U", identifiers={"eidas": "DE/IT/1"})
    assert linked.subject == "RSSMRA80A01H501U"
