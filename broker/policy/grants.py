"""From fired ``grant``/``refuse`` rules to the abilitazioni of a decision.

Order, so every outcome can be explained:

1. each ``grant`` rule that fired gives one abilitazione per matching item, unless the
   login lacks the credential strength it ``requires_privilege``;
2. ``refuse`` rules take abilitazioni away (refusals override grants, as deny overrides
   allow);
3. grants of the same kind and scope are merged: a new grant *extends* the services;
4. an exclusive pair (ISEE consultation only / acquisition; social benefits consultation
   / consultation and acquisition) is never granted: both halves are dropped, and an
   operator abilitazione left with no service is dropped too. The trace says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from broker.directory.model import SERVICES, exclusive_conflicts
from broker.model import Abilitazione, Privilege, RuleTrace
from broker.policy.conditions import Missing, Outcome, Ref, Resolver, item_resolver, show
from broker.policy.loader import CompiledGrant, CompiledRule
from broker.policy.schema import AbilitazioneKind, Refuse

EXCLUSIVE_RULE = "exclusive-pairs"
EXCLUSIVE_SOURCE = "broker/directory/model.py:EXCLUSIVE_PAIRS"


@dataclass
class GrantOutcome:
    """What the grant stage produced: abilitazioni, per-rule notes, extra trace lines."""

    abilitazioni: tuple[Abilitazione, ...] = ()
    notes: dict[str, list[str]] = field(default_factory=dict)
    granted_by: set[str] = field(default_factory=set)
    extra: list[RuleTrace] = field(default_factory=list)


def matched_items(spec: CompiledGrant[Refuse], outcome: Outcome, get: Resolver) -> list[Any]:
    """The items of ``for_each`` whose ``where`` held ([None]: the rule has no list)."""
    if spec.items is None:
        return [None]
    items = get(spec.items.of)
    if not isinstance(items, list | tuple) or not outcome.children:
        return []
    some = outcome.children[-1]
    return [item for item, child in zip(items, some.children, strict=False) if child.ok]


def _build(spec: CompiledGrant[Refuse],
           res: Resolver) -> tuple[dict[str, str], tuple[str, ...], str]:
    """The scope and services for one item; a non-empty third value says what was missing."""
    scope: dict[str, str] = {}
    for key, value in spec.scope:
        actual = res(value.path) if isinstance(value, Ref) else value
        if actual is Missing or actual is None or isinstance(actual, dict | list | tuple):
            return {}, (), f"scope {key} ({show(value)}) is missing"
        scope[key] = str(actual)
    services: tuple[str, ...]
    if isinstance(spec.services, Ref):
        raw = res(spec.services.path)
        if raw is Missing:
            raw = []
        if not isinstance(raw, list | tuple):
            return {}, (), f"services ({spec.services.path}) is not a list"
        services = tuple(str(s) for s in raw)
    else:
        services = spec.services
    unknown = sorted(set(services) - set(SERVICES))
    if unknown:
        return {}, (), f"unknown services {unknown}"
    return scope, tuple(sorted(set(services))), ""


def _label(kind: str, scope: dict[str, str], services: tuple[str, ...] = ()) -> str:
    where = ", ".join(f"{k}={show(v)}" for k, v in sorted(scope.items())) or "no scope"
    return f"{kind} ({where})" + (f" services [{', '.join(services)}]" if services else "")


def apply_grants(results: list[tuple[CompiledRule, Outcome]], get: Resolver,
                 privilege: Privilege | None) -> GrantOutcome:
    out = GrantOutcome()
    merged: dict[tuple[AbilitazioneKind, tuple[tuple[str, str], ...]], set[str]] = {}
    for rule, outcome in results:
        spec = rule.grant
        if spec is None or not outcome.ok:
            continue
        notes = out.notes.setdefault(rule.id, [])
        need = spec.spec.requires_privilege
        for item in matched_items(spec, outcome, get):
            res = item_resolver(get, item) if item is not None else get
            scope, services, missing = _build(spec, res)
            if missing:
                notes.append(f"not granted: {missing}")
                continue
            label = _label(spec.spec.kind, scope, services)
            if need is not None and (privilege is None or not privilege.satisfies(need)):
                notes.append(f"not granted: {label} needs privilege {need.value}, this login "
                             f"gives {privilege.value if privilege else 'none'}")
                continue
            key = (spec.spec.kind, tuple(sorted(scope.items())))
            if key in merged:
                notes.append(f"extends {label}")
            else:
                notes.append(f"grants {label}")
            merged.setdefault(key, set()).update(services)
            out.granted_by.add(rule.id)
    for rule, outcome in results:
        refusal = rule.refuse
        if refusal is None or not outcome.ok:
            continue
        notes = out.notes.setdefault(rule.id, [])
        for item in matched_items(refusal, outcome, get):
            res = item_resolver(get, item) if item is not None else get
            scope, _, missing = _build(refusal, res)
            if missing:
                notes.append(f"refuses nothing: {missing}")
                continue
            gone = [k for k in merged if k[0] == refusal.spec.kind
                    and set(scope.items()) <= set(k[1])]
            for old in gone:
                del merged[old]
            label = _label(refusal.spec.kind, scope)
            notes.append(f"refuses {label}" if gone else f"refuses {label}: none was granted")
            out.granted_by.add(rule.id)
    final = []
    for (kind, scope_items), granted in merged.items():
        scope = dict(scope_items)
        for a, b in exclusive_conflicts(granted):
            granted -= {a, b}
            out.extra.append(RuleTrace(
                rule=EXCLUSIVE_RULE, source=EXCLUSIVE_SOURCE, fired=True, effect="refuse",
                why=f"{a} and {b} exclude each other: neither is granted for "
                    f"{_label(kind, scope)}"))
        if kind == "municipal_operator" and not granted:
            out.extra.append(RuleTrace(
                rule=EXCLUSIVE_RULE, source=EXCLUSIVE_SOURCE, fired=True, effect="refuse",
                why=f"{_label(kind, scope)} has no service left: not granted"))
            continue
        final.append(Abilitazione(kind=kind, scope=scope, services=tuple(sorted(granted))))
    out.abilitazioni = tuple(sorted(final, key=lambda a: (a.kind, sorted(a.scope.items()))))
    return out
