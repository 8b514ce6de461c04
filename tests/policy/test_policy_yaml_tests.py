"""The YAML policy tests: the shipped ones pass, and they catch a wrong policy."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from broker.paths import project_dir
from broker.policy.testing import load_tests, run_tests


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    target = tmp_path / "policies"
    shutil.copytree(project_dir("policies"), target)
    return target


def test_shipped_policy_tests_all_pass() -> None:
    report = run_tests(project_dir("policies"))
    assert report.problems == ()
    failed = [(r.source, r.name, r.failures) for r in report.results if not r.passed]
    assert failed == []
    assert report.passed


def test_every_shipped_rule_is_exercised() -> None:
    """Each shipped rule fires in at least one shipped test."""
    from broker.policy import PolicyEngine

    directory = project_dir("policies")
    engine = PolicyEngine.load(directory)
    tests, problems = load_tests(directory / "tests")
    assert problems == []
    fired = {t.rule for lt in tests for t in engine.decide(lt.input).trace if t.fired}
    assert {r.id for r in engine.rules} <= fired


def test_both_sides_of_2021_are_tested() -> None:
    tests, _ = load_tests(project_dir("policies") / "tests")
    pin_dates = {lt.input.now.date().isoformat() for lt in tests
                 if lt.input.event.provider == "pin"}
    assert "2021-09-30" in pin_dates and "2021-10-01" in pin_dates


def test_tests_catch_a_policy_that_drops_the_2021_restriction(folder: Path) -> None:
    pin = folder / "pin.yaml"
    pin.write_text(pin.read_text().split("  - id: pin-only-abroad-since-2021")[0])
    report = run_tests(folder)
    assert not report.passed
    failing = [r for r in report.results if not r.passed]
    # the restriction tests fail; tests about other rules still pass
    assert failing and all("pin" in r.source for r in failing)
    assert any("allow: want False, got True" in f for r in failing for f in r.failures)
    # a test naming the removed rule is a problem of the test file, with file:line
    assert any("no rule with id 'pin-only-abroad-since-2021'" in p for p in report.problems)


def test_tests_catch_a_wrong_privilege(folder: Path) -> None:
    spid = folder / "spid.yaml"
    spid.write_text(spid.read_text().replace("privilege: dispositivo", "privilege: ordinario"))
    report = run_tests(folder)
    failures = [f for r in report.results for f in r.failures]
    assert "privilege: want dispositivo, got ordinario" in failures


@pytest.mark.parametrize(("text", "fragment"), [
    ("version: 1\ntests:\n  - name: x\n    input: {provider: pin}\n    expect: {allow: true}\n",
     "t.yaml:4: tests[0].input.now: required key is missing"),
    ("version: 1\ntests:\n  - name: x\n    input: {provider: pin, now: 2024-01-01}\n"
     "    expect: {allow: true, privilage: ordinario}\n",
     "t.yaml:5: tests[0].expect.privilage: unknown key"),
    ("version: 1\ntests:\n  - name: x\n    input:\n      provider: pin\n      now: 2024-01-01\n"
     "      identity: {fiscal_code: RSSMRA80A01H501X}\n    expect: {allow: true}\n",
     "t.yaml:4: tests[0].input: cannot build the input: fiscal code RSSM********501X"),
    ("version: 1\ntests:\n  - name: x\n    input: {provider: spid, level: 7, now: 2024-01-01}\n"
     "    expect: {allow: true}\n", "cannot build the input: unknown level '7'"),
    ("version: 1\ntests:\n  - name: x\n    input: {provider: pin, now: 2024-01-01}\n"
     "    expect: {allow: true, fired: [no-such-rule]}\n",
     "t.yaml:5: tests[0].expect.fired[0]: no rule with id 'no-such-rule'"),
    ("version: 1\ntests:\n  - name: x\n  - name: x\n", "t.yaml:3: tests[0].input: required"),
])
def test_broken_test_file(folder: Path, text: str, fragment: str) -> None:
    for old in (folder / "tests").glob("*.yaml"):
        old.unlink()
    (folder / "tests" / "t.yaml").write_text(text)
    report = run_tests(folder)
    assert not report.passed
    assert any(fragment in p for p in report.problems), report.problems


def test_no_tests_is_a_problem(folder: Path) -> None:
    shutil.rmtree(folder / "tests")
    report = run_tests(folder)
    assert not report.passed
    assert "no policy tests" in report.problems[0]


def test_a_login_decides_as_explain_does_with_the_fired_rules_alone() -> None:
    """``decide(fired_only=True)`` (what a login uses) gives the same decision and the
    same fired trace as the full evaluation, on every shipped test input."""
    from broker.policy import PolicyEngine
    from broker.policy.conditions import evaluate, holds
    from broker.policy.engine import resolver

    directory = project_dir("policies")
    engine = PolicyEngine.load(directory)
    tests, _ = load_tests(directory / "tests")
    assert len(tests) > 20
    for lt in tests:
        name = lt.test.name
        full = engine.decide(lt.input)
        fast = engine.decide(lt.input, fired_only=True)
        assert fast.model_dump(exclude={"trace"}) == full.model_dump(exclude={"trace"}), name
        assert [t for t in fast.trace if t.fired] == [t for t in full.trace if t.fired], name
        assert len(fast.trace) < len(full.trace), name
        get = resolver(lt.input)
        for rule in engine.rules:
            assert holds(rule.when, get) is evaluate(rule.when, get).ok, (name, rule.id)
