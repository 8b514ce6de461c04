"""``varco eidas link|unlink|list``: the back office's links from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from broker.audit import AuditLog
from broker.cli.main import main
from broker.clock import SystemClock
from broker.config import load_settings
from broker.paths import project_dir
from broker.store.factory import build_database


def _json(out: str) -> object:
    """The command's JSON (log lines another test's logging set-up may add come first)."""
    start = min(i for i in (out.find("{"), out.find("[")) if i >= 0)
    return json.loads(out[start:])


@pytest.fixture
def config(tmp_path: Path) -> Path:
    demo = yaml.safe_load((project_dir("config") / "demo.yaml").read_text())
    demo["data_dir"] = str(tmp_path / "data")
    for key in ("clients", "policies_dir", "mappings_dir"):
        demo[key] = str((project_dir("config") / demo[key]).resolve())
    path = tmp_path / "settings.yaml"
    path.write_text(yaml.safe_dump(demo))
    return path


def test_link_list_and_unlink_with_operator_and_reason(
        config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pid = "DE/IT/8472519036"
    assert main(["eidas", "link", pid, "rssmra80a01h501u", "--operator", "m.ferri",
                 "--reason", "documents checked", "--config", str(config)]) == 0
    assert _json(capsys.readouterr().out) == {"linked": pid,
                                                   "fiscal_code": "RSSMRA80A01H501U"}
    assert main(["eidas", "list", "--config", str(config)]) == 0
    [link] = _json(capsys.readouterr().out)
    assert (link["person_identifier"], link["operator"]) == (pid, "m.ferri")
    assert main(["eidas", "unlink", pid, "--operator", "m.ferri", "--reason", "wrong person",
                 "--config", str(config)]) == 0
    capsys.readouterr()
    assert main(["eidas", "unlink", pid, "--operator", "m.ferri", "--reason", "again",
                 "--config", str(config)]) == 1
    assert "not linked" in capsys.readouterr().out
    assert main(["eidas", "link", "Schmidt", "RSSMRA80A01H501U", "--operator", "x",
                 "--reason", "y", "--config", str(config)]) == 1
    assert "CC/IT/identifier" in capsys.readouterr().out
    settings = load_settings(config)
    kinds = [(e.kind, e.data["reason"]) for e in
             AuditLog(build_database(settings), SystemClock()).entries(limit=100)]
    assert sorted(kinds) == [("eidas.linked", "documents checked"),
                            ("eidas.unlinked", "wrong person")]  # newest first
