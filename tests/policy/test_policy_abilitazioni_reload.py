"""Hot reload in a running broker: a good change is in force for the next login without a
restart; a broken one is refused, the last good policy stays, and the reason is in the
log and in the audit trail."""

from __future__ import annotations

import logging
import shutil
import time

import pytest

from broker.paths import project_dir
from tests.oidc.oidc_helpers import GIUSEPPE, PIN_GIUSEPPE, Browser, code_from, demo_rp

pytestmark = pytest.mark.integration

DENY_GIUSEPPE = """version: 1
description: temporary block
rules:
  - id: block-demo-rp
    description: the demo RP is closed for maintenance
    when: {client.id: demo-rp}
    deny:
      reason: maintenance
      message: {it: Servizio in manutenzione, en: Service under maintenance}
"""


def wait_for(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def login(broker):
    browser = Browser(broker.url)
    pending = demo_rp(broker.url).authorize_params()
    return pending, browser.pin_login(browser.authorize(pending), GIUSEPPE, PIN_GIUSEPPE,
                                      pending.rp.redirect_uri)


def test_good_change_applies_broken_change_is_refused(broker_factory, tmp_path, caplog):
    policies = tmp_path / "policies"
    shutil.copytree(project_dir("policies"), policies)
    broker = broker_factory(policies_dir=policies)
    pending, response = login(broker)
    code_from(response, pending)  # allowed today

    (policies / "zz-maintenance.yaml").write_text(DENY_GIUSEPPE)
    assert wait_for(lambda: any(r.id == "block-demo-rp"
                                for r in broker.ctx.policy.engine.rules))
    pending, page = login(broker)
    assert page.status_code == 403 and "Servizio in manutenzione" in page.text
    entry = broker.ctx.audit.entries("policy.reload")[0]
    assert entry.data["ok"] is True and "zz-maintenance.yaml" in entry.data["files"]

    caplog.set_level(logging.ERROR, logger="varco.policy")
    (policies / "zz-maintenance.yaml").write_text(
        DENY_GIUSEPPE.replace("deny:", "deny:\n      colour: red"))
    assert wait_for(lambda: broker.ctx.audit.entries("policy.reload")[0].data["ok"] is False)
    refused = broker.ctx.audit.entries("policy.reload")[0].data
    assert any("zz-maintenance.yaml:" in p and "colour" in p for p in refused["problems"])
    assert any("policy reload refused" in r.getMessage() and "colour" in r.getMessage()
               for r in caplog.records)
    # the last good policy (with the block) stays in force
    pending, page = login(broker)
    assert page.status_code == 403 and "Servizio in manutenzione" in page.text

    (policies / "zz-maintenance.yaml").unlink()
    assert wait_for(lambda: not any(r.id == "block-demo-rp"
                                    for r in broker.ctx.policy.engine.rules))
    pending, response = login(broker)
    code_from(response, pending)
