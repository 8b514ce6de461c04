"""Read a policy folder into compiled rules, collecting every problem as ``file:line``.

Only ``<dir>/*.yaml`` are policies (sorted by name; rules keep file order); the
``tests/`` sub-folder holds policy tests and is read by ``broker.policy.testing``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from broker.policy.conditions import All, Cond, Ref, Some, check_field, compile_when
from broker.policy.schema import (
    SUPPORTED_VERSIONS,
    Allow,
    Deny,
    Grant,
    PolicyFile,
    Refuse,
    Requirement,
    Rule,
)
from broker.yamlfile import YamlDoc, YamlProblem, load

# What a compiled grant applies: a Grant, or a Refuse (a Grant is a Refuse with services).
S = TypeVar("S", bound=Refuse, covariant=True)
SpecT = TypeVar("SpecT", bound=Refuse)


@dataclass(frozen=True)
class CompiledGrant(Generic[S]):
    """A ``grant`` or ``refuse`` ready to apply: items to match, scope and services to build."""

    spec: S
    items: Some | None  # None: one abilitazione when ``when`` holds
    scope: tuple[tuple[str, str | Ref], ...]
    services: tuple[str, ...] | Ref


@dataclass(frozen=True)
class CompiledRule:
    """A validated rule ready to evaluate; ``source`` is ``file:line`` of its ``id``."""

    id: str
    description: str
    source: str
    when: Cond
    allow: Allow | None
    deny: Deny | None
    grant: CompiledGrant[Grant] | None = None
    refuse: CompiledGrant[Refuse] | None = None

    @property
    def effect(self) -> str:
        if self.grant is not None:
            return "grant"
        if self.refuse is not None:
            return "refuse"
        return "allow" if self.allow is not None else "deny"


@dataclass(frozen=True)
class CompiledRequirement:
    requirement: Requirement
    source: str



M = TypeVar("M", bound=BaseModel)

def policy_files(directory: Path) -> list[Path]:
    return sorted(p for p in Path(directory).glob("*.yaml") if p.is_file())


def load_rules(directory: Path) -> tuple[list[CompiledRule], list[str]]:
    """Every rule in ``directory`` and every problem found (both lists may be non-empty)."""
    rules, _, problems = load_policy(directory)
    return rules, problems


def load_policy(directory: Path) -> tuple[list[CompiledRule], list[CompiledRequirement],
                                          list[str]]:
    """Rules, relying-party requirements and every problem found in ``directory``."""
    directory = Path(directory)
    requirements: list[CompiledRequirement] = []
    if not directory.is_dir():
        return [], [], [f"{directory}: policy folder not found"]
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
        requirements += compile_requirements(doc, problems)
    clients: dict[str, str] = {}
    for req in requirements:
        first = clients.setdefault(req.requirement.client, req.source)
        if first != req.source:
            problems.append(f"{req.source}: requirements: client {req.requirement.client!r} "
                            f"already has requirements (at {first})")
    return rules, requirements, problems


def compile_requirements(doc: YamlDoc, problems: list[str]) -> list[CompiledRequirement]:
    raw = doc.data.get("requirements") if isinstance(doc.data, dict) else None
    out = []
    for i, item in enumerate(raw if isinstance(raw, list) else []):
        path = ("requirements", i)
        if not isinstance(item, dict):
            problems.append(doc.problem(path, "a requirement is a mapping"))
            continue
        try:
            req = Requirement.model_validate(item)
        except ValidationError as exc:
            problems.extend(doc.pydantic_problems(exc, prefix=path, data=item))
            continue
        out.append(CompiledRequirement(req, doc.where(path)))
    return out


def _compile_grant(doc: YamlDoc, path: tuple[str | int, ...], spec: SpecT,
                   raw: dict[str, Any], problems: list[str]) -> CompiledGrant[SpecT] | None:
    before = len(problems)
    items = None
    if spec.for_each is not None:
        why = check_field(spec.for_each)
        if why:
            problems.append(doc.problem((*path, "for_each"), why))
        else:
            where = compile_when(doc, (*path, "where"), raw.get("where"), problems,
                                 in_some=True) if spec.where is not None else All((), 0)
            if where is not None:
                items = Some(spec.for_each, where, doc.line((*path, "for_each")))
    in_item = spec.for_each is not None
    scope: list[tuple[str, str | Ref]] = []
    for key, value in spec.scope.items():
        where_ = (*path, "scope", key)
        if isinstance(value, dict) and set(value) == {"ref"} and isinstance(value["ref"], str):
            why = check_field(value["ref"], in_item)
            if why:
                problems.append(doc.problem((*where_, "ref"), why))
            scope.append((key, Ref(value["ref"])))
        elif isinstance(value, str | int) and not isinstance(value, bool):
            scope.append((key, str(value)))
        else:
            problems.append(doc.problem(where_, "a scope value is text or {ref: <field>}"))
    services: tuple[str, ...] | Ref = ()
    raw_services = spec.services if isinstance(spec, Grant) else []
    if isinstance(raw_services, dict):
        why = check_field(raw_services["ref"], in_item)
        if why:
            problems.append(doc.problem((*path, "services", "ref"), why))
        services = Ref(raw_services["ref"])
    else:
        services = tuple(raw_services)
    if len(problems) != before:
        return None
    return CompiledGrant(spec, items, tuple(scope), services)


def parse_versioned(doc: YamlDoc, model: type[M], body: str, problems: list[str]) -> M | None:
    """A policy or policy-test file as ``model``: a mapping with a supported ``version``.

    Problems are appended with file:line; None when the file cannot be used at all.
    """
    if not isinstance(doc.data, dict):
        problems.append(doc.problem((), f"expected a mapping with 'version' and '{body}'"))
        return None
    try:
        parsed = model.model_validate(doc.data)
    except ValidationError as exc:
        problems.extend(doc.pydantic_problems(exc))
        return None
    version = getattr(parsed, "version", None)
    if version not in SUPPORTED_VERSIONS:
        known = ", ".join(map(str, SUPPORTED_VERSIONS))
        problems.append(doc.problem(("version",), f"unsupported version {version} "
                                    f"(this broker reads version {known})"))
        return None
    return parsed


def compile_file(doc: YamlDoc, problems: list[str]) -> list[CompiledRule]:
    """The rules of one parsed file; problems are appended, broken rules left out."""
    parsed = parse_versioned(doc, PolicyFile, "rules", problems)
    if parsed is None:
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
        grant: CompiledGrant[Grant] | None = None
        refuse: CompiledGrant[Refuse] | None = None
        if rule.grant is not None:
            grant = _compile_grant(doc, (*path, "grant"), rule.grant, raw["grant"], problems)
            if grant is None:
                cond = None
        if rule.refuse is not None:
            refuse = _compile_grant(doc, (*path, "refuse"), rule.refuse, raw["refuse"],
                                    problems)
            if refuse is None:
                cond = None
        if cond is None:
            continue
        out.append(CompiledRule(rule.id, rule.description, doc.where((*path, "id")), cond,
                                rule.allow, rule.deny, grant, refuse))
    return out
