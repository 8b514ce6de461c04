"""AgID's spid-sp-test against a running broker: metadata, AuthnRequest, all responses.

The suite's fake IdP gets a fresh key pair (its bundled certificate is expired, and the
registry refuses expired certificates) through ``IDP_ENTITYID``/``IDP_CERT_PATH``; its
metadata goes through the normal IdP registry. The broker runs on the system clock
because spid-sp-test stamps responses with the real time. A tiny relying party answers
200 when it receives a code and 403 when it receives an error, as spid-sp-test expects
after following redirects. Each run prints spid-sp-test's own summary line.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse

from broker.clock import SystemClock
from tests.conformance.summary import report as report_line

pytestmark = pytest.mark.integration

HERE = Path(__file__).resolve().parent
PROVIDERS_TESTS = HERE.parent / "providers"
sys.path.insert(0, str(PROVIDERS_TESTS))
from spid_env import free_port, serve, spid_section  # noqa: E402

FAKE_IDP = "https://spid-sp-test.example/idp"
BIN = Path(sys.executable).with_name("spid_sp_test")
RP_SECRET = "conformance-secret"
# Exactly the attributes our metadata requests, with a valid codice fiscale.
ATTRIBUTES = {
    "spidCode": "AGID-001", "name": "SpidValidator", "familyName": "AgID",
    "fiscalNumber": "TINIT-GDASDV00A01H501J", "email": "spid.tech@agid.gov.it",
    "dateOfBirth": "2000-01-01", "placeOfBirth": "Roma",
    "address": "Via Listz 21 00144 Roma", "mobilePhone": "+393331234567",
}


def _fake_idp_keys(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "spid-sp-test fake IdP")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=30))
            .sign(key, hashes.SHA256()))
    (folder / "private.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption()))
    (folder / "public.cert").write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _relying_party() -> FastAPI:
    app = FastAPI()

    @app.get("/cb")
    def cb(request: Request) -> PlainTextResponse:
        if "code" in request.query_params and "error" not in request.query_params:
            return PlainTextResponse("logged in", 200)
        return PlainTextResponse(f"login refused: {request.query_params.get('error')}", 403)

    return app


@dataclass
class Conformance:
    broker_url: str
    authn_url: str
    env: dict[str, str]
    workdir: Path

    def run(self, *args: str) -> tuple[subprocess.CompletedProcess, dict]:
        report = self.workdir / f"report-{len(list(self.workdir.glob('report-*')))}.json"
        cmd = [str(BIN), "--metadata-url", f"{self.broker_url}/spid/metadata",
               *args, "-rf", "json", "-o", str(report), "-d", "CRITICAL"]
        proc = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=600,
                              cwd=self.workdir)
        summary = [ln for ln in proc.stdout.splitlines() if ln.startswith("Spid QA")]
        report_line(f"spid-sp-test {' '.join(args)[:90]} -> "
                    f"{summary[-1] if summary else proc.stdout[-500:]}")
        data = json.loads(report.read_text()) if report.exists() else {}
        return proc, data


def _checks(report: dict, category_prefix: str) -> list[dict]:
    """The individual checks spid-sp-test reported for one category (metadata, response...)."""
    out: list[dict] = []
    for category, tests in report.get("test", {}).get("sp", {}).items():
        if category.startswith(category_prefix):
            for body in tests.values():
                out.extend(body)
    return out


def _failures(report: dict) -> list[str]:
    return [f"{c.get('test')} {c.get('value', '')}" for c in _checks(report, "")
            if c.get("result") != "success"]


def _start(tmp_path: Path, profile: str) -> Iterator[Conformance]:
    from tests.harness import demo_settings, start_broker

    idp_keys = tmp_path / "fake-idp"
    _fake_idp_keys(idp_keys)
    env = {**os.environ, "IDP_ENTITYID": FAKE_IDP, "IDP_CERT_PATH": str(idp_keys),
           "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    idp_dir = tmp_path / "spid-idps"
    idp_dir.mkdir()
    md = subprocess.run([str(BIN), "--idp-metadata"], env=env, capture_output=True, text=True,
                        check=True, timeout=120)
    (idp_dir / "spid-sp-test.xml").write_text(md.stdout[md.stdout.index("<"):])

    rp_url, rp_server, _ = serve(_relying_party())
    clients = tmp_path / "clients.yaml"
    clients.write_text(yaml.safe_dump({"clients": [{
        "client_id": "conformance-rp", "name": "spid-sp-test RP",
        "token_endpoint_auth_method": "client_secret_basic",
        "secret_hash": "sha256:" + hashlib.sha256(RP_SECRET.encode()).hexdigest(),
        "redirect_uris": [f"{rp_url}/cb"], "scopes": ["openid", "profile", "fiscal_number"],
    }]}))
    spid = spid_section(idp_dir)
    if profile == "private":
        spid.pop("ipa_code")
        spid.update(profile="private", vat_number="IT12345678903",
                    fiscal_code="12345678903",
                    billing={"email": "fatture@example.it", "company": "Varco S.r.l.",
                             "vat_number": "12345678903", "denomination": "Varco S.r.l.",
                             "address": "Via Roma", "number": "1", "cap": "00100",
                             "city": "Roma", "province": "RM"})
    base = demo_settings(tmp_path / "data")
    settings = base.model_copy(update={
        "clients": clients, "providers": {**base.providers, "spid": spid}})
    broker = start_broker(settings, clock=SystemClock(), port=free_port())
    params = {"response_type": "code", "client_id": "conformance-rp",
              "redirect_uri": f"{rp_url}/cb", "scope": "openid profile", "state": "s" * 16,
              "nonce": "n" * 16, "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
              "code_challenge_method": "S256", "idp_hint": f"spid:{FAKE_IDP}"}
    attr = tmp_path / "attributes.json"
    attr.write_text(json.dumps(ATTRIBUTES))
    env["CONFORMANCE_ATTRS"] = str(attr)
    try:
        yield Conformance(broker.url, f"{broker.url}/authorize?{urlencode(params)}", env,
                          tmp_path)
    finally:
        broker.stop()
        rp_server.should_exit = True


@pytest.fixture
def public(tmp_path: Path) -> Iterator[Conformance]:
    yield from _start(tmp_path, "public")


@pytest.fixture
def private(tmp_path: Path) -> Iterator[Conformance]:
    yield from _start(tmp_path, "private")


def test_metadata_public_profile(public: Conformance):
    proc, report = public.run("--extra", "-pr", "spid-sp-public")
    assert proc.returncode == 0, _failures(report) or proc.stdout[-2000:] + proc.stderr[-2000:]
    assert len(_checks(report, "metadata")) >= 100


def test_metadata_private_profile(private: Conformance):
    proc, report = private.run("--extra", "-pr", "spid-sp-private")
    assert proc.returncode == 0, _failures(report) or proc.stdout[-2000:] + proc.stderr[-2000:]
    assert len(_checks(report, "metadata")) >= 100


def test_authn_request_and_all_responses(public: Conformance):
    proc, report = public.run(
        "--extra", "-pr", "spid-sp-public", "--authn-url", public.authn_url,
        "-ap", "spid_sp_plugin.BrokerFlow", "-tr", "-aj", public.env["CONFORMANCE_ATTRS"])
    assert proc.returncode == 0, _failures(report) or proc.stdout[-3000:] + proc.stderr[-3000:]
    responses = _checks(report, "response")
    authn = _checks(report, "authnrequest")
    report_line(f"spid-sp-test spid-sp-public: responses {len(responses)} checks, "
                f"authn request {len(authn)} checks, all successful")
    assert len(responses) >= 111 and all(c["result"] == "success" for c in responses)
    assert len(authn) >= 40 and all(c["result"] == "success" for c in authn)


def test_bundled_fake_idp_with_expired_certificate_is_refused(tmp_path: Path):
    """Without a fresh key pair, spid-sp-test's own IdP certificate is expired: refused."""
    from providers.saml.idp_registry import IdpRegistry

    env = {k: v for k, v in os.environ.items() if k not in ("IDP_ENTITYID", "IDP_CERT_PATH")}
    md = subprocess.run([str(BIN), "--idp-metadata"], env=env, capture_output=True, text=True,
                        check=True, timeout=120)
    (tmp_path / "bundled.xml").write_text(md.stdout[md.stdout.index("<"):])
    registry = IdpRegistry(tmp_path, SystemClock().now)
    assert registry.all() == []
    assert any("expired" in r.reason for r in registry.rejected), registry.rejected
