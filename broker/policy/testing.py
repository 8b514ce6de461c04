"""Policy unit tests in YAML beside the policies (``policies/tests/*.yaml``), like ``opa test``.

::

    version: 1
    tests:
      - name: resident in Italy refused after 2021-10-01
        input:
          provider: pin                 # level: 2 or acr: ... (default per provider)
          now: 2021-10-01               # a date means noon in Rome; or a full timestamp
          attributes: {pin_privilege: dispositivo, pin_kind: standard}
          identity: {fiscal_code: RSSMRA80A01H501U, residence: italy, italian_document: true}
          client: {client_id: demo-rp, tags: [], required_privilege: dispositivo}
          facts: {}
        expect:
          allow: false
          reason: pin_not_eligible
          message_contains: SPID        # in the Italian or the English message
          fired: [pin-only-abroad-since-2021]
          not_fired: [pin-telephone-no-web]
          abilitazioni:                 # exactly these (order free); [] means none
            - {kind: municipal_operator, scope: {comune: H501}, services: [isee.acquisizione]}
          trace_contains: exclude each other   # text somewhere in the trace

Only the keys given under ``expect`` are checked (``privilege: null`` checks there is none).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from broker.errors import BrokerError
from broker.model import Privilege
from broker.policy.conditions import ROME
from broker.policy.engine import PolicyEngine
from broker.policy.inputs import PolicyInput, acr_for, make_input
from broker.policy.loader import parse_versioned
from broker.yamlfile import YamlDoc, YamlProblem, load

DEFAULT_FISCAL_CODE = "RSSMRA80A01H501U"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TestInput(_Strict):
    __test__ = False  # not a pytest class

    provider: str
    now: datetime | date
    level: int | str | None = None
    acr: str | None = None
    idp: str | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)
    identity: dict[str, Any] = Field(default_factory=dict)
    client: dict[str, Any] = Field(default_factory=dict)
    facts: dict[str, Any] = Field(default_factory=dict)


# An abilitazione as the tests compare it: kind, sorted scope items, sorted services.
AbilitazioneKey = tuple[str, tuple[tuple[str, str], ...], tuple[str, ...]]


class ExpectedAbilitazione(_Strict):
    kind: str
    scope: dict[str, str] = Field(default_factory=dict)
    services: list[str] = Field(default_factory=list)

    def key(self) -> AbilitazioneKey:
        return (self.kind, tuple(sorted(self.scope.items())), tuple(sorted(self.services)))


class Expect(_Strict):
    allow: bool
    privilege: Privilege | None = None
    acr: str | None = None
    reason: str | None = None
    message_contains: str | None = None
    fired: list[str] = Field(default_factory=list)
    not_fired: list[str] = Field(default_factory=list)
    abilitazioni: list[ExpectedAbilitazione] | None = None
    trace_contains: str | None = None


class PolicyTest(_Strict):
    name: str = Field(min_length=1)
    input: TestInput
    expect: Expect


class TestFile(_Strict):
    __test__ = False  # not a pytest class

    version: int
    description: str | None = None
    tests: list[dict[str, Any]]


@dataclass(frozen=True)
class LoadedTest:
    test: PolicyTest
    source: str
    input: PolicyInput


@dataclass(frozen=True)
class TestResult:
    __test__ = False  # not a pytest class

    name: str
    source: str
    failures: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.failures


@dataclass(frozen=True)
class TestReport:
    __test__ = False  # not a pytest class

    results: tuple[TestResult, ...]
    problems: tuple[str, ...]  # files or tests that could not be run

    @property
    def passed(self) -> bool:
        return not self.problems and all(r.passed for r in self.results)


def _moment(value: datetime | date) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=ROME)
    return datetime.combine(value, time(12), ROME)


def load_tests(tests_dir: Path, rule_ids: set[str] | None = None
               ) -> tuple[list[LoadedTest], list[str]]:
    """Every test in ``tests_dir/*.yaml`` and every problem (``file:line`` each)."""
    problems: list[str] = []
    loaded: list[LoadedTest] = []
    files = sorted(Path(tests_dir).glob("*.yaml")) if Path(tests_dir).is_dir() else []
    if not files:
        return [], [f"{tests_dir}: no policy tests (*.yaml)"]
    for path in files:
        try:
            doc = load(path)
        except YamlProblem as exc:
            problems.append(str(exc))
            continue
        loaded += _load_file(doc, problems, rule_ids)
    return loaded, problems


def _load_file(doc: YamlDoc, problems: list[str], rule_ids: set[str] | None) -> list[LoadedTest]:
    parsed = parse_versioned(doc, TestFile, "tests", problems)
    if parsed is None:
        return []
    out = []
    for i, raw in enumerate(parsed.tests):
        path: tuple[str | int, ...] = ("tests", i)
        try:
            test = PolicyTest.model_validate(raw)
        except ValidationError as exc:
            problems.extend(doc.pydantic_problems(exc, prefix=path, data=raw))
            continue
        bad = False
        for key, names in (("fired", test.expect.fired), ("not_fired", test.expect.not_fired)):
            for j, rule in enumerate(names):
                synthetic = rule == "exclusive-pairs" or rule.startswith("requirement:")
                if rule_ids is not None and rule not in rule_ids and not synthetic:
                    problems.append(doc.problem((*path, "expect", key, j),
                                                f"no rule with id {rule!r}"))
                    bad = True
        inp = test.input
        identity = dict(inp.identity)
        try:
            acr = inp.acr or acr_for(inp.provider, inp.level)
            built = make_input(
                provider=inp.provider, now=_moment(inp.now), acr=acr, idp=inp.idp,
                fiscal_code=_fiscal_code(identity.pop("fiscal_code", DEFAULT_FISCAL_CODE)),
                attributes=inp.attributes, identity=identity, client=inp.client,
                facts=inp.facts)
        except (ValueError, BrokerError) as exc:  # ValidationError is a ValueError
            detail = exc.detail if isinstance(exc, BrokerError) else str(exc).splitlines()[0]
            problems.append(doc.problem((*path, "input"), f"cannot build the input: {detail}"))
            continue
        if not bad:
            out.append(LoadedTest(test, doc.where(path), built))
    return out


def check(test: PolicyTest, engine: PolicyEngine, inp: PolicyInput) -> list[str]:
    """What differs between the expected and the actual decision ([] when it passes)."""
    decision = engine.decide(inp)
    want = test.expect
    given = want.model_fields_set
    failures = []
    if decision.allow != want.allow:
        failures.append(f"allow: want {want.allow}, got {decision.allow} "
                        f"(reason {decision.reason})")
    if "privilege" in given and decision.privilege != want.privilege:
        failures.append(f"privilege: want {want.privilege}, got {decision.privilege}")
    if "acr" in given and decision.acr != want.acr:
        failures.append(f"acr: want {want.acr}, got {decision.acr}")
    if "reason" in given and decision.reason != want.reason:
        failures.append(f"reason: want {want.reason}, got {decision.reason}")
    if want.message_contains is not None:
        text = f"{decision.message_it or ''}\n{decision.message_en or ''}"
        if want.message_contains.lower() not in text.lower():
            failures.append(f"message: want it to contain {want.message_contains!r}")
    if want.abilitazioni is not None:
        got: list[AbilitazioneKey] = sorted(
            (a.kind, tuple(sorted(a.scope.items())), tuple(sorted(a.services)))
            for a in decision.abilitazioni)
        expected = sorted(a.key() for a in want.abilitazioni)
        if got != expected:
            failures.append(f"abilitazioni: want {expected}, got {got}")
    if want.trace_contains is not None and not any(
            want.trace_contains.lower() in t.why.lower() for t in decision.trace):
        failures.append(f"trace: want a line containing {want.trace_contains!r}")
    fired = {t.rule for t in decision.trace if t.fired}
    failures += [f"rule {r} should have fired" for r in want.fired if r not in fired]
    failures += [f"rule {r} should not have fired" for r in want.not_fired if r in fired]
    return failures


def run_tests(policies_dir: Path, tests_dir: Path | None = None,
              engine: PolicyEngine | None = None) -> TestReport:
    """Load the policies (``PolicyError`` if broken) and run every test against them."""
    engine = engine or PolicyEngine.load(Path(policies_dir))
    tests, problems = load_tests(tests_dir or Path(policies_dir) / "tests",
                                 {r.id for r in engine.rules})
    results = tuple(TestResult(t.test.name, t.source, tuple(check(t.test, engine, t.input)))
                    for t in tests)
    return TestReport(results, tuple(problems))


def _fiscal_code(value: Any) -> str | None:
    """A test's codice fiscale; ``null`` for a person known by another identifier only."""
    return None if value is None else str(value)
