"""A login method from a separate Python package, found through the ``varco.providers``
entry point: ``varco serve`` offers it, and an RP gets a code and tokens from it, with no
line of ``broker/`` knowing its name.

The package (``echo_provider``, a word typed into a form) is written to a folder with its
own ``.dist-info/entry_points.txt``, as ``pip install`` would leave it, and put on the
broker process's ``PYTHONPATH``; its mapping and policy files sit beside the shipped ones.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from broker.paths import project_dir, project_root
from tests.harness import free_port
from tests.oidc.oidc_helpers import code_from, demo_rp, error_from, hidden

PACKAGE = '''
"""A toy login method: the person configured, for whoever types the word."""
from fastapi import APIRouter, Response
from fastapi.responses import HTMLResponse

from broker.errors import AuthenticationFailed, Text
from broker.model import RANK_LOW, AcrLevel, AuthEvent
from providers.base import LoginStep, ProviderConfig, ProviderServices, Refusal, StepRoute
from providers.types import ProviderType

ACR = "urn:example:acr:echo"


class EchoConfig(ProviderConfig):
    person: str
    word: str


class EchoProvider:
    name = "echo"
    label = Text("Entra con la parola", "Sign in with the word")

    def __init__(self, cfg: EchoConfig, services: ProviderServices):
        self.cfg, self.services, self.router = cfg, services, APIRouter()

    def start(self, step: LoginStep, hint: str | None) -> Response:
        token = self.services.pages.csrf_token(step.request)
        return HTMLResponse(
            f'<form method="post" action="/echo/word"><input name="tx" value="{step.tx}">'
            f'<input name="csrf_token" value="{token}"><input name="word"></form>')

    def steps(self) -> list[StepRoute]:
        return [StepRoute("/word", ("POST",), self.word)]

    def word(self, step: LoginStep) -> AuthEvent | Refusal:
        if step.form.get("word") != self.cfg.word:
            return Refusal(AuthenticationFailed("wrong word"))
        return AuthEvent(provider="echo", subject=self.cfg.person, acr=ACR, amr=("echo",),
                         attributes={"fiscal_code": self.cfg.person},
                         auth_time=self.services.clock.now())


PROVIDER_TYPE = ProviderType(
    name="echo", label=EchoProvider.label, config=EchoConfig, factory=EchoProvider,
    acr_levels=(AcrLevel(uri=ACR, rank=RANK_LOW),), default_acr=ACR, amr=("echo",))
'''

MAPPING = {"version": 1, "description": "the echo provider",
           "fields": {"fiscal_code": {"from": "fiscal_code", "transform": ["fiscal_code"]}}}
POLICY = {"version": 1, "description": "the echo provider reads",
          "rules": [{"id": "echo-ordinario", "description": "The word gives ordinario.",
                     "when": {"provider": "echo"},
                     "allow": {"privilege": "ordinario"}}]}
PERSON = "RSSMRA80A01H501U"


@pytest.fixture
def broker_with_echo(tmp_path: Path) -> Iterator[str]:
    site = tmp_path / "site"
    (site / "echo_provider").mkdir(parents=True)
    (site / "echo_provider" / "__init__.py").write_text(textwrap.dedent(PACKAGE))
    dist = site / "echo_provider-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: echo-provider\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[varco.providers]\necho = echo_provider:PROVIDER_TYPE\n")
    mappings = shutil.copytree(project_root() / "mappings", tmp_path / "mappings")
    policies = shutil.copytree(project_root() / "policies", tmp_path / "policies")
    (mappings / "echo.yaml").write_text(yaml.safe_dump(MAPPING))
    (policies / "echo.yaml").write_text(yaml.safe_dump(POLICY))
    demo = yaml.safe_load((project_dir("config") / "demo.yaml").read_text())
    demo.update(data_dir=str(tmp_path / "data"), mappings_dir=str(mappings),
                policies_dir=str(policies),
                clients=str(project_dir("config") / "clients.demo.yaml"),
                directory={"demo": False},
                providers={"echo": {"person": PERSON, "word": "apriti"}})
    config = tmp_path / "echo.yaml"
    config.write_text(yaml.safe_dump(demo))
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(site), str(project_root()), os.environ.get("PYTHONPATH", "")])}
    log = (tmp_path / "broker.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "broker.cli.main", "serve", "--config", str(config),
         "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((tmp_path / "broker.log").read_text()[-3000:])
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


def test_a_provider_from_another_package_signs_a_citizen_in(broker_with_echo: str) -> None:
    url = broker_with_echo
    rp = demo_rp(url)
    with httpx.Client(base_url=url, follow_redirects=False, timeout=30) as browser:
        pending = rp.authorize_params(idp_hint="echo")
        start = browser.get("/authorize", params=pending.params)
        assert start.status_code == 303, start.text
        form = browser.get(start.headers["location"])
        assert form.status_code == 200 and 'action="/echo/word"' in form.text
        fields = {"tx": hidden(form.text, "tx"), "csrf_token": hidden(form.text, "csrf_token")}

        wrong = browser.post("/echo/word", data={**fields, "word": "sesamo"})
        assert wrong.status_code == 401  # the refusal's own page, with its error id
        assert "Codice dell" in wrong.text

        done = browser.post("/echo/word", data={**fields, "word": "apriti"})
        code = code_from(done, pending)
        tokens = rp.exchange(browser, pending, code)
        assert tokens.status_code == 200, tokens.text
        info = browser.get("/userinfo", headers={
            "Authorization": f"Bearer {tokens.json()['access_token']}"}).json()
        assert info["amr"] == ["echo"] and info["acr"] == "urn:example:acr:echo"
        assert info["privilege"] == "ordinario"

        # The acr is ranked as declared: low, so an RP asking for dispositivo is not
        # given an echo login (the chooser hides it and the hint is ignored).
        strong = rp.authorize_params(idp_hint="echo", acr_values="https://www.spid.gov.it/SpidL2")
        refused = browser.get("/authorize", params={**strong.params, "prompt": "none"})
        assert error_from(refused, strong)["error"] == "login_required"
        discovery = browser.get("/.well-known/openid-configuration").json()
        assert "urn:example:acr:echo" in discovery["acr_values_supported"]
