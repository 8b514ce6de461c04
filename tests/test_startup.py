"""A broker never starts on broken files: it says what is wrong, file by file."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from broker.app import create_app
from broker.cli.main import main
from broker.errors import ConfigError, PolicyError
from broker.paths import project_dir
from tests.harness import demo_settings


def _copy_policies(tmp_path: Path) -> Path:
    target = tmp_path / "policies"
    shutil.copytree(project_dir("policies"), target)
    return target


def test_server_refuses_to_start_on_a_broken_policy(tmp_path: Path) -> None:
    policies = _copy_policies(tmp_path)
    broken = policies / "pin.yaml"
    broken.write_text(broken.read_text() + "\nunexpected_key: true\n")
    settings = demo_settings(tmp_path / "data", policies_dir=policies)
    with pytest.raises(PolicyError) as caught:
        create_app(settings)
    assert any("pin.yaml:" in p and "unexpected_key" in p for p in caught.value.problems)


def test_varco_serve_exits_with_every_config_problem(tmp_path: Path, capsys) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("clients: nowhere.yaml\npolicies_dir: .\nmappings_dir: .\n"
                      "data_dir: data\nissuer: http://example.org\nunknown: 1\n")
    assert main(["serve", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "unknown" in err  # unknown keys are errors, not ignored


def test_config_problems_are_all_reported_at_once(tmp_path: Path) -> None:
    from broker.config import load_settings

    config = tmp_path / "bad.yaml"
    config.write_text("clients: nowhere.yaml\npolicies_dir: nope\nmappings_dir: nope2\n"
                      "issuer: http://example.org\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    text = str(caught.value)
    assert "issuer" in text and "clients" in text and "policies_dir" in text
