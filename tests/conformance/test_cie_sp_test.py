"""AgID's spid-sp-test, CIE profiles ``cie-sp-public`` and ``cie-sp-private``, against the broker.

Metadata, AuthnRequest and every response test, driven like the SPID run
(``test_spid_sp_test``: fresh fake-IdP keys, system clock, a tiny RP answering 200/403)
but on ``/cie/metadata`` and through ``/login/start/cie`` (``test_cie_sp_plugin``).

Responses 70 and 71 (Assertion Issuer with an empty or no ``Format``): spid-sp-test
skips both for ``cie-sp-public`` because CIE ID's Issuer has no Format; its
``cie-sp-private`` profile has no response rules of its own and falls back to the SPID
set, so the private run passes the public profile's list explicitly (``-tn``). What we do with
those two shapes is tested in ``tests/providers/test_cie_flow.py``: no Format is
accepted (the value is still checked), an empty Format is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
import yaml
from spid_sp_test.responses.settings import RESPONSE_TESTS
from test_spid_sp_test import (
    BIN,
    FAKE_IDP,
    RP_SECRET,
    _checks,
    _failures,
    _fake_idp_keys,
    _relying_party,
    free_port,
    serve,
)

from broker.clock import SystemClock
from tests.conformance.summary import report as report_line

pytestmark = pytest.mark.integration

HERE = Path(__file__).resolve().parent
ATTRIBUTES = {"name": "CieValidator", "familyName": "AgID",
              "fiscalNumber": "TINIT-GDASDV00A01H501J", "dateOfBirth": "2000-01-01"}
# The CIE rule spid-sp-test applies to cie-sp-public, for both profiles.
CIE_RESPONSES = [n for n in RESPONSE_TESTS if n not in ("70", "71")]


class CieRun:
    """One broker with the CIE provider and spid-sp-test's fake IdP as its CIE IdP."""

    def __init__(self, tmp_path: Path, profile: str):
        from cie_env import cie_section

        from tests.harness import demo_settings, start_broker

        self.profile = profile
        self.workdir = tmp_path
        keys = tmp_path / "fake-idp"
        _fake_idp_keys(keys)
        self.env = {**os.environ, "IDP_ENTITYID": FAKE_IDP, "IDP_CERT_PATH": str(keys),
                    "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
        idp_dir = tmp_path / "cie-idps"
        idp_dir.mkdir()
        md = subprocess.run([str(BIN), "--idp-metadata"], env=self.env, capture_output=True,
                            text=True, check=True, timeout=120)
        (idp_dir / "spid-sp-test.xml").write_text(md.stdout[md.stdout.index("<"):])
        rp_url, self.rp_server, _ = serve(_relying_party())
        clients = tmp_path / "clients.yaml"
        clients.write_text(yaml.safe_dump({"clients": [{
            "client_id": "conformance-rp", "name": "spid-sp-test RP",
            "token_endpoint_auth_method": "client_secret_basic",
            "secret_hash": "sha256:" + hashlib.sha256(RP_SECRET.encode()).hexdigest(),
            "redirect_uris": [f"{rp_url}/cb"], "scopes": ["openid", "profile", "fiscal_number"],
        }]}))
        cie = cie_section(idp_dir)
        if profile == "private":
            cie.pop("ipa_code")
            cie.update(profile="private", vat_number="IT12345678903", fiscal_code="12345678903",
                       nace2_code="62.01")
        base = demo_settings(tmp_path / "data")
        self.broker = start_broker(base.model_copy(update={
            "clients": clients, "providers": {**base.providers, "cie": cie}}),
            clock=SystemClock(), port=free_port())
        self.authn_url = f"{self.broker.url}/authorize?" + urlencode({
            "response_type": "code", "client_id": "conformance-rp",
            "redirect_uri": f"{rp_url}/cb", "scope": "openid profile", "state": "s" * 16,
            "nonce": "n" * 16, "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "code_challenge_method": "S256", "idp_hint": "cie"})
        self.attributes = tmp_path / "attributes.json"
        self.attributes.write_text(json.dumps(ATTRIBUTES))

    def run(self, *args: str) -> tuple[subprocess.CompletedProcess, dict]:
        report = self.workdir / f"cie-report-{len(list(self.workdir.glob('cie-report-*')))}.json"
        proc = subprocess.run(
            [str(BIN), "--metadata-url", f"{self.broker.url}/cie/metadata", "--extra",
             "-pr", f"cie-sp-{self.profile}", *args, "-rf", "json", "-o", str(report),
             "-d", "CRITICAL"],
            env=self.env, capture_output=True, text=True, timeout=900, cwd=self.workdir)
        summary = [ln for ln in proc.stdout.splitlines() if ln.startswith("Spid QA")]
        report_line(" ".join([f"cie-sp-{self.profile}", *args][:6])[:90] + " -> "
                    + (summary[-1] if summary else proc.stdout[-500:]))
        return proc, json.loads(report.read_text()) if report.exists() else {}

    def run_flow(self) -> tuple[subprocess.CompletedProcess, dict]:
        """AuthnRequest checks and every response, through the OIDC front door."""
        names = ("-tn", *CIE_RESPONSES) if self.profile == "private" else ()
        return self.run("--authn-url", self.authn_url, "-ap", "test_cie_sp_plugin.CieBrokerFlow",
                        "-tr", "-aj", str(self.attributes), *names)

    def stop(self) -> None:
        self.broker.stop()
        self.rp_server.should_exit = True


@pytest.fixture(params=["public", "private"])
def cie_run(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CieRun]:
    run = CieRun(tmp_path, request.param)
    yield run
    run.stop()


def test_cie_metadata(cie_run: CieRun):
    proc, report = cie_run.run()
    assert proc.returncode == 0, _failures(report) or proc.stdout[-2000:] + proc.stderr[-2000:]
    checks = _checks(report, "metadata")
    assert len(checks) >= 50 and all(c["result"] == "success" for c in checks)


def test_cie_authn_request_and_all_responses(cie_run: CieRun):
    proc, report = cie_run.run_flow()
    assert proc.returncode == 0, _failures(report) or proc.stdout[-3000:] + proc.stderr[-3000:]
    responses = _checks(report, "response")
    authn = _checks(report, "authnrequest")
    report_line(f"cie-sp-{cie_run.profile}: responses {len(responses)} checks, "
                f"authn request {len(authn)} checks")
    assert len(responses) >= len(CIE_RESPONSES) and all(
        c["result"] == "success" for c in responses)
    assert len(authn) >= 40 and all(c["result"] == "success" for c in authn)
