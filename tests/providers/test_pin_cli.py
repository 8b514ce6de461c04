"""``varco pin ...``: the back office on the command line, on the data folder of a broker.

The commands run against the same database a running broker uses, record the operator
as ``cli:<name>`` with the reason, and their effects show over HTTP (a revoked PIN no
longer logs in).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from broker.cli.main import main
from broker.paths import project_dir
from tests.providers.pin_env import pin_login

pytestmark = pytest.mark.integration
GIUSEPPE, LAURA = "VRDGPP70C15Z110R", "BNCLRA85M41Z404W"


def _config(tmp_path: Path, data_dir: Path) -> Path:
    root = project_dir("config").parent
    path = tmp_path / "varco.yaml"
    path.write_text(
        f"data_dir: {data_dir}\nclients: {root / 'config/clients.demo.yaml'}\n"
        f"policies_dir: {root / 'policies'}\nmappings_dir: {root / 'mappings'}\n"
        "providers:\n  pin:\n    demo_users: true\n")
    return path


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


def test_cli_approve_revoke_history_and_outbox(broker_factory, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    data_dir = tmp_path / "data"
    broker = broker_factory(data_dir=data_dir)
    cfg = str(_config(tmp_path, data_dir))
    life = broker.ctx.providers["pin"].lifecycle
    conversion = life.submit_conversion(GIUSEPPE, ("a.pdf", "application/pdf"),
                                        ("b.png", "image/png"))

    code, out = _run(capsys, "pin", "conversions", "--config", cfg)
    assert code == 0 and json.loads(out)[0]["id"] == conversion
    code, out = _run(capsys, "pin", "approve", str(conversion), "--config", cfg,
                     "--operator", "m.rossi", "--reason", "documenti verificati")
    assert code == 0 and json.loads(out)["status"] == "approved"
    code, out = _run(capsys, "pin", "approve", str(conversion), "--config", cfg,
                     "--operator", "m.rossi", "--reason", "again")
    assert code == 1 and "decided" in out
    code, out = _run(capsys, "pin", "history", GIUSEPPE, "--config", cfg)
    history = json.loads(out)
    assert history["credentials"][-1]["privilege"] == "dispositivo"
    assert history["events"][-1]["actor"] == "cli:m.rossi"

    code, out = _run(capsys, "pin", "revoke", LAURA, "--config", cfg, "--operator", "l.neri",
                     "--reason", "smarrimento dichiarato allo sportello")
    assert code == 0
    _, refused = pin_login(broker, LAURA, "Abroad01")
    assert refused.status_code == 401
    entries = broker.ctx.audit.entries("pin.revoked")
    assert entries[0].data["actor"] == "cli:l.neri"
    assert entries[0].data["reason"] == "smarrimento dichiarato allo sportello"

    code, out = _run(capsys, "pin", "outbox", "--config", cfg, "--fiscal-code", LAURA)
    listed = json.loads(out)["messages"]
    assert listed and listed[0]["template"] == "pin.notice"
    code, out = _run(capsys, "pin", "history", "XXXX", "--config", cfg)
    assert code == 1 and "refused" in out
