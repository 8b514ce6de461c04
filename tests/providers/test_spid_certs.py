"""SP certificates per the SPID rules, checked by AgID's validator (spid-compliant-certificates)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from spid_sp_test.compliant_certificates import check_certificate

ENTITY = "https://varco.example.it/spid/metadata"


@pytest.mark.parametrize(("profile", "org_id"), [
    ("public", "PA:IT-inps"), ("private", "VATIT-12345678903"),
    ("private", "CF:IT-RSSMRA80A01H501U")])
def test_keygen_command_makes_a_compliant_certificate(tmp_path: Path, profile: str, org_id: str):
    key, cert = tmp_path / "sp.key", tmp_path / "sp.crt"
    out = subprocess.run([sys.executable, "-m", "providers.spid.certs", "--entity-id", ENTITY,
                          "--profile", profile, "--org-id", org_id, "--org-name", "INPS",
                          "--common-name", "Varco", "--locality", "Roma", "--key-size", "2048",
                          "--key-out", str(key), "--cert-out", str(cert)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert key.stat().st_mode & 0o077 == 0
    checks = check_certificate(str(cert), profile)
    assert checks and [c for c in checks if c["result"] != "success"] == []
    public = x509.load_pem_x509_certificate(cert.read_bytes()).public_key()
    assert isinstance(public, rsa.RSAPublicKey) and public.key_size == 2048


def test_keygen_refuses_wrong_organization_identifier_and_never_overwrites(tmp_path: Path):
    args = [sys.executable, "-m", "providers.spid.certs", "--entity-id", ENTITY,
            "--org-name", "INPS", "--common-name", "Varco", "--locality", "Roma",
            "--key-out", str(tmp_path / "k"), "--cert-out", str(tmp_path / "c")]
    bad = subprocess.run([*args, "--profile", "public", "--org-id", "VATIT-12345678903"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "does not fit" in bad.stderr
    assert not (tmp_path / "k").exists()
    (tmp_path / "k").write_text("existing")
    again = subprocess.run([*args, "--profile", "public", "--org-id", "PA:IT-inps"],
                           capture_output=True, text=True, timeout=60)
    assert again.returncode == 2 and (tmp_path / "k").read_text() == "existing"
