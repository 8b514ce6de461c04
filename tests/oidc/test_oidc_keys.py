"""The signing key store: generated once, private on disk, stable kids, several per alg."""

from __future__ import annotations

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from broker.errors import ConfigError
from broker.oidc.idtoken import InvalidHint, sign, verify_hint
from broker.oidc.keys import KeyStore, generate

ISSUER = "https://varco.example"


def test_keys_are_created_once_private_and_reloaded_with_the_same_kids(tmp_path):
    first = KeyStore.load_or_create(tmp_path, now=1000)
    files = sorted(tmp_path.glob("*.pem"))
    assert [f.name for f in files] == ["ES256-1000.pem", "RS256-1000.pem"]
    for pem in files:
        assert pem.stat().st_mode & 0o077 == 0, f"{pem} readable by others"
    second = KeyStore.load_or_create(tmp_path, now=2000)
    assert sorted(tmp_path.glob("*.pem")) == files  # nothing regenerated
    assert {k.kid for k in second.all()} == {k.kid for k in first.all()}
    assert "PRIVATE" not in repr(second) and "private_key" not in repr(second.all()[0])


def test_a_newer_key_signs_and_the_older_stays_published(tmp_path):
    old = KeyStore.load_or_create(tmp_path, now=1000)
    token = sign(old, "ES256", {"iss": ISSUER, "sub": "x", "aud": "rp"})
    newer = generate("ES256")
    (tmp_path / "ES256-2000.pem").write_bytes(newer.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    rotated = KeyStore.load_or_create(tmp_path, now=3000)
    assert rotated.signing_key("ES256").created == 2000
    published = {k["kid"] for k in rotated.jwks()["keys"]}
    assert old.signing_key("ES256").kid in published and len(published) == 3
    assert verify_hint(rotated, token, ISSUER)["sub"] == "x"  # old tokens still verify


def test_a_broken_key_file_stops_the_start_with_its_name(tmp_path):
    (tmp_path / "ES256-1.pem").write_text("not a key")
    (tmp_path / "junk.pem").write_text("x")
    with pytest.raises(ConfigError) as err:
        KeyStore.load_or_create(tmp_path)
    assert len(err.value.problems) == 2
    assert "ES256-1.pem" in str(err.value) and "junk.pem" in str(err.value)


def test_hint_verification_refuses_foreign_tampered_and_none(tmp_path):
    keys = KeyStore.load_or_create(tmp_path / "a", now=1)
    other = KeyStore.load_or_create(tmp_path / "b", now=1)
    good = sign(keys, "RS256", {"iss": ISSUER, "sub": "s", "aud": "rp", "exp": 1})
    assert verify_hint(keys, good, ISSUER)["sub"] == "s"  # expired is fine for logout
    foreign = sign(other, "ES256", {"iss": ISSUER, "sub": "s", "aud": "rp"})
    head, body, sig = good.split(".")
    tampered = ".".join([head, body[:-2] + ("AA" if body[-2:] != "AA" else "BB"), sig])
    unsigned = jwt.encode({"iss": ISSUER, "sub": "s", "aud": "rp"}, "", algorithm="none")
    wrong_iss = sign(keys, "ES256", {"iss": "https://evil.example", "sub": "s", "aud": "rp"})
    for bad in (foreign, tampered, unsigned, wrong_iss, "garbage"):
        with pytest.raises(InvalidHint):
            verify_hint(keys, bad, ISSUER)
