"""Read a policy folder into compiled rules, collecting every problem as ``file:line``.

Only ``<dir>/*.yaml`` are policies (sorted by name; rules keep file order); the
``tests/`` sub-folder holds policy tests and is read by ``broker.policy.testing``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from broker.policy.conditions import Cond, compile_when
from broker.policy.schema import SUPPORTED_VERSIONS, Allow, Deny, PolicyFile, Rule
from broker.yamlfile import YamlDoc, YamlProblem, load


@dataclass(frozen=True)
class CompiledRule:
    """A validated rule ready to evaluate; ``source`` is ``file:line`` of its ``id``."""

    id: str
    description: str
    source: str
    when: Cond
    allow: Allow | None
    deny: Deny | None

    @property
    def effect(self) -> str:
        return "allow" if self.allow is not None else "deny"


def policy_files(directory: Path) -> list[Path]:
    return sorted(p for p in Path(directory).glob("*.yaml") if p.is_file())


def load_rules(directory: Path) -> tuple[list[CompiledRule], list[str]]:
    """Every rule in ``directory`` and every problem found (both lists may be non-empty)."""
    directory = Path(directory)
    if not directory.is_dir():
        return [], [f"{directory}: policy folder not found"]
    problems: list[str] = []
    rules: list[CompiledRule] = []
    stray = sorted(directory.glob("*.yml"))
    problems += [f"{p}:1: policy files end in .yaml; this one would be ignored" for p in stray]
    files = policy_files(directory)
    if not files:
        problems.append(f"{directory}: no policy files (*.yaml); deny by default would refuse "
                        "every login")
    seen: dict[str, str] = {}
    for path in files:
        try:
            doc = load(path)
        except YamlProblem as exc:
            problems.append(str(exc))
            continue
        for rule in compile_file(doc, problems):
            if rule.id in seen:
                problems.append(f"{rule.source}: rules[{rule.id}]: duplicate rule id "
                                f"{rule.id!r} (first at {seen[rule.id]})")
                continue
            seen[rule.id] = rule.source
            rules.append(rule)
    return rules, problems


def compile_file(doc: YamlDoc, problems: list[str]) -> list[CompiledRule]:
    """The rules of one parsed file; problems are appended, broken rules left out."""
    if not isinstance(doc.data, dict):
        problems.append(doc.problem((), "expected a mapping with 'version' and 'rules'"))
        return []
    try:
        parsed = PolicyFile.model_validate(doc.data)
    except ValidationError as exc:
        problems.extend(doc.pydantic_problems(exc))
        return []
    if parsed.version not in SUPPORTED_VERSIONS:
        known = ", ".join(map(str, SUPPORTED_VERSIONS))
        problems.append(doc.problem(("version",), f"unsupported version {parsed.version} "
                                    f"(this broker reads version {known})"))
        return []
    out: list[CompiledRule] = []
    for i, raw in enumerate(parsed.rules):
        path = ("rules", i)
        try:
            rule = Rule.model_validate(raw)
        except ValidationError as exc:
            problems.extend(doc.pydantic_problems(exc, prefix=path, data=raw))
            # still check the conditions, so every problem shows at once
            if isinstance(raw.get("when"), dict):
                compile_when(doc, (*path, "when"), raw["when"], problems)
            continue
        cond = compile_when(doc, (*path, "when"), rule.when, problems)
        if cond is None:
            continue
        out.append(CompiledRule(rule.id, rule.description, doc.where((*path, "id")), cond,
                                rule.allow, rule.deny))
    return out
