"""``varco policy check | explain | test`` as an admin runs them, through the real parser."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from broker.cli.main import main
from broker.paths import project_dir
from broker.policy import PolicyEngine


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    target = tmp_path / "policies"
    shutil.copytree(project_dir("policies"), target)
    return target


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


def test_check_shipped(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, "policy", "check")
    assert code == 0
    rules = len(PolicyEngine.load(project_dir("policies")).rules)
    assert out.startswith(f"OK: {rules} rules in ")
    assert "5 mappings" in out


def test_check_prints_every_error_with_file_and_line(
        capsys: pytest.CaptureFixture[str], folder: Path, tmp_path: Path) -> None:
    (folder / "pin.yaml").write_text((folder / "pin.yaml").read_text()
                                     .replace("provider: pin\n      event.pin_privilege: ordinario",
                                              "provider: pin\n      event.pin_privilege: {is: x}"))
    (folder / "spid.yaml").write_text("version: 1\nrules:\n  - id: a\n    description: d\n"
                                      "    allow: {privilege: admin}\n")
    mappings = tmp_path / "mappings"
    shutil.copytree(project_dir("mappings"), mappings)
    (mappings / "cns.yaml").write_text("version: 1\nfields: {fiscal_code: cf, nick: n}\n")
    code, out = run(capsys, "policy", "check", str(folder), "--mappings", str(mappings))
    assert code == 1
    lines = out.splitlines()
    assert any(line.startswith(f"{folder / 'pin.yaml'}:11: rules[0].when.event.pin_privilege.is:"
                               " unknown operator") for line in lines), out
    assert any(line.startswith(f"{folder / 'spid.yaml'}:5: rules[0].allow.privilege:")
               for line in lines), out
    assert any(line.startswith(f"{mappings / 'cns.yaml'}:2: fields.nick: not an identity field")
               for line in lines), out
    assert lines[-1] == "3 problem(s) found; nothing was changed."


def test_check_reports_broken_policy_tests(capsys: pytest.CaptureFixture[str],
                                           folder: Path) -> None:
    (folder / "tests" / "cns.yaml").write_text("version: 1\ntests:\n  - nam: x\n")
    code, out = run(capsys, "policy", "check", str(folder))
    assert code == 1
    assert f"{folder / 'tests' / 'cns.yaml'}:3: tests[0].nam: unknown key" in out


def test_explain_denied_resident(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, "policy", "explain", "--fiscal-code", "RSSMRA80A01H501U",
                    "--provider", "pin", "--attr", "pin_privilege=dispositivo",
                    "--attr", "pin_kind=standard", "--attr", "residence=italy",
                    "--attr", "italian_document=true", "--now", "2021-10-01")
    assert code == 0
    assert "RSSMRA80A01H501U" not in out  # masked
    assert "person RSSM********501U" in out
    assert "[FIRED] deny pin-only-abroad-since-2021" in out
    assert "[FIRED] allow pin-dispositivo" in out
    assert "[not fired] allow pin-ordinario" in out
    assert "event.pin_privilege = 'ordinario' ✗ (is 'dispositivo')" in out
    assert "identity.residence = 'abroad' ✗ (is 'italy')" in out
    assert "DENY (pin_not_eligible)" in out
    assert "message (it): Dal 1° ottobre 2021" in out


def test_explain_allowed_before_2021(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, "policy", "explain", "--fiscal-code", "RSSMRA80A01H501U",
                    "--provider", "pin", "--attr", "pin_privilege=dispositivo",
                    "--attr", "residence=italy", "--attr", "italian_document=true",
                    "--now", "2021-09-30")
    assert code == 0
    assert "[not fired] deny pin-only-abroad-since-2021" in out
    assert "ALLOW by pin-dispositivo: privilege dispositivo, acr urn:varco:acr:pin" in out


def test_explain_spid_level_and_client(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, "policy", "explain", "--fiscal-code", "BNCLRA85M41Z404W",
                    "--provider", "spid", "--level", "1", "--client", "pension-rp",
                    "--attr", "client.tags=benefits,isee")
    assert code == 0
    assert "client pension-rp, tags ['benefits', 'isee']" in out
    assert "level < 2 ✓ (is 1)" in out
    assert "DENY (spid_level_too_low)" in out


@pytest.mark.parametrize(("argv", "fragment"), [
    (("--fiscal-code", "RSSMRA80A01H501X", "--provider", "pin"), "wrong check character"),
    (("--fiscal-code", "RSSMRA80A01H501U", "--provider", "spid", "--level", "9"),
     "unknown level '9'"),
    (("--fiscal-code", "RSSMRA80A01H501U", "--provider", "pin", "--attr", "residence=moon"),
     "residence"),
    (("--fiscal-code", "RSSMRA80A01H501U", "--provider", "pin", "--attr", "novalue"),
     "expected key=value"),
])
def test_explain_bad_input(capsys: pytest.CaptureFixture[str], argv: tuple[str, ...],
                           fragment: str) -> None:
    code, out = run(capsys, "policy", "explain", *argv)
    assert code == 1
    assert out.startswith("error: ")
    assert fragment in out
    assert "RSSMRA80A01H501" not in out


def test_test_shipped(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, "policy", "test")
    assert code == 0
    assert re.fullmatch(r"PASS: \d+ passed, 0 failed.*", out.strip().splitlines()[-1])


def test_test_reports_failures(capsys: pytest.CaptureFixture[str], folder: Path) -> None:
    cie = folder / "cie.yaml"
    cie.write_text(cie.read_text().replace("level: {gte: 2}", "level: {gte: 3}"))
    code, out = run(capsys, "policy", "test", str(folder), "-v")
    assert code == 1
    assert f"FAIL {folder / 'tests' / 'cie.yaml'}:" in out
    assert "CIE level 2 -> dispositivo" in out
    assert "allow: want True, got False (reason no_rule_allows)" in out
    assert "PASS " in out  # -v lists the passing ones too
    passed = out.count("\nPASS ") + out.startswith("PASS ")
    assert out.strip().splitlines()[-1] == f"FAIL: {passed} passed, 1 failed"


def test_test_on_broken_policies(capsys: pytest.CaptureFixture[str], folder: Path) -> None:
    (folder / "cns.yaml").write_text("version: 1\nrules: [\n")
    code, out = run(capsys, "policy", "test", str(folder))
    assert code == 1
    assert f"{folder / 'cns.yaml'}:" in out
    assert "no test was run" in out
