"""The policy engine: deny by default, deny overrides allow, every rule traced.

``PolicyEngine.decide`` evaluates every rule against a ``PolicyInput``:
- if any ``deny`` rule fires, the decision is a deny with the first such rule's reason
  and message (files by name, rules in file order);
- else if any ``allow`` rule fires, the decision allows with the highest privilege
  granted (ties: the first rule), and its acr (the rule's, or the event's);
- else it is a deny (``no_rule_allows``);
- an allowed login then gets its abilitazioni from the ``grant`` and ``refuse`` rules
  (``broker.policy.grants``: credential strength, refusals override grants, grants extend,
  exclusive pairs never both), and the relying party's ``requirements`` are checked: a
  client that needs, say, an ISEE operator denies a login without one.
The trace lists every rule, fired or not, with the reason. Pure: no I/O but ``load``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from broker.errors import AccessDenied, PolicyError
from broker.model import Abilitazione, Decision, Identity, Privilege, RuleTrace
from broker.policy.conditions import Missing, Outcome, Resolver, evaluate, holds, partial
from broker.policy.grants import apply_grants
from broker.policy.inputs import PolicyInput, level_of
from broker.policy.loader import CompiledRequirement, CompiledRule, load_policy
from broker.policy.schema import Requirement

DEFAULT_DENY_REASON = "no_rule_allows"


@dataclass(frozen=True)
class RuleResult:
    rule: CompiledRule
    outcome: Outcome
    notes: tuple[str, ...] = ()  # what a grant/refuse rule did, item by item
    did: bool | None = None  # grant/refuse: whether it changed the abilitazioni

    @property
    def fired(self) -> bool:
        return self.outcome.ok if self.did is None else self.did

    def trace(self) -> RuleTrace:
        why = "; ".join((self.outcome.text, *self.notes))
        return RuleTrace(rule=self.rule.id, source=self.rule.source, fired=self.fired,
                         effect=self.rule.effect, why=why)


@dataclass(frozen=True)
class Evaluation:
    """Every rule's outcome and the decision; ``explain`` prints this."""

    results: tuple[RuleResult, ...]
    decision: Decision


IDENTITY_FIELDS = frozenset(Identity.model_fields)


def resolver(inp: PolicyInput) -> Resolver:
    """The function that gives a condition field's value for this input (``Missing`` if none)."""
    event, identity, client = inp.event, inp.identity, inp.client
    top = {
        "provider": event.provider, "acr": event.acr, "level": level_of(event.acr),
        "idp": event.idp, "amr": event.amr, "auth_time": event.auth_time, "now": inp.now,
    }

    def get(path: str) -> Any:
        if path in top:
            value = top[path]
            return Missing if value is None else value
        root, _, rest = path.partition(".")
        if root == "event":
            return event.attributes.get(rest, Missing)
        if root == "identity":
            head, _, tail = rest.partition(".")
            if head == "extra":
                return _dig(identity.extra, tail) if tail else identity.extra
            if head not in IDENTITY_FIELDS:  # a provider's own fact (identity.linked)
                return _dig(identity.extra, rest)
            value = getattr(identity, head, None)
            if tail and isinstance(value, dict):  # identity.identifiers.eidas
                return _dig(value, tail)
            return Missing if value is None else value
        if root == "client":
            name = "client_id" if rest == "id" else rest
            value = getattr(client, name, None)
            return Missing if value is None else value
        if root == "facts":
            return _dig(inp.facts, rest)
        return Missing

    return get


def _dig(data: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if isinstance(data, dict) and part in data:
            data = data[part]
        else:
            return Missing
    return Missing if data is None else data


def _outcome(rule: CompiledRule, get: Resolver) -> Outcome:
    """The rule's condition (and a grant/refuse rule's item list) with its reasons."""
    outcome = evaluate(rule.when, get)
    spec = rule.grant or rule.refuse
    if spec is not None and spec.items is not None:
        items = evaluate(spec.items, get)
        outcome = Outcome(outcome.ok and items.ok, f"{outcome.text}; {items.text}",
                          (outcome, items), "all")
    return outcome


def _fires(rule: CompiledRule, get: Resolver) -> bool:
    """``_outcome(rule, get).ok`` without building the reasons."""
    spec = rule.grant or rule.refuse
    return holds(rule.when, get) and (spec is None or spec.items is None
                                      or holds(spec.items, get))


class PolicyEngine:
    """A loaded, validated set of rules. Immutable: reload builds a new engine."""

    def __init__(self, rules: list[CompiledRule] | tuple[CompiledRule, ...], source: str = "",
                 requirements: list[CompiledRequirement] | tuple[CompiledRequirement, ...] = ()):
        self._rules = tuple(rules)
        self.source = source
        self._requirements = {r.requirement.client: r for r in requirements}
        self._can_satisfy: dict[tuple[str, Privilege | None], bool] = {}

    @classmethod
    def load(cls, directory: Path) -> PolicyEngine:
        """Load every policy file in ``directory``; ``PolicyError`` lists every problem."""
        rules, requirements, problems = load_policy(Path(directory))
        if problems:
            raise PolicyError(problems)
        return cls(rules, str(directory), requirements)

    @property
    def rules(self) -> tuple[CompiledRule, ...]:
        return self._rules

    def requirement_for(self, client_id: str) -> Requirement | None:
        """What policy says relying party ``client_id`` needs (None: nothing more)."""
        found = self._requirements.get(client_id)
        return found.requirement if found else None

    def needs_directory(self, client_id: str, scopes: tuple[str, ...] = ()) -> bool:
        """Does a login for this client depend on directory facts (fail closed without)?"""
        req = self.requirement_for(client_id)
        return "abilitazioni" in scopes or (req is not None and req.abilitazione is not None)

    def evaluate(self, inp: PolicyInput) -> Evaluation:
        get = resolver(inp)
        return self._combine(inp, [RuleResult(rule, _outcome(rule, get)) for rule in self._rules],
                             get)

    def decide(self, inp: PolicyInput, *, fired_only: bool = False) -> Decision:
        """The decision for ``inp``, with the trace of every rule.

        ``fired_only``: the same decision, traced for the rules that fired only (what the
        audit trail keeps). A login takes this: the other rules are tested for truth
        alone, without the text that explains why they did not fire.
        """
        if not fired_only:
            return self.evaluate(inp).decision
        get = resolver(inp)
        results = [RuleResult(rule, _outcome(rule, get)) for rule in self._rules
                   if _fires(rule, get)]
        return self._combine(inp, results, get).decision

    def _combine(self, inp: PolicyInput, results: list[RuleResult], get: Resolver) -> Evaluation:
        granted = None
        allows = [r.rule for r in results if r.fired and r.rule.allow is not None]
        denies = [r.rule for r in results if r.fired and r.rule.deny is not None]
        if allows and not denies:
            best = max(allows, key=lambda r: (r.allow.privilege.rank if r.allow else 0,
                                              -allows.index(r)))
            assert best.allow is not None
            granted = apply_grants([(r.rule, r.outcome) for r in results], get,
                                   best.allow.privilege)
            results = [RuleResult(r.rule, r.outcome, tuple(granted.notes.get(r.rule.id, ())),
                                  (r.rule.id in granted.granted_by) if r.rule.effect in (
                                      "grant", "refuse") else None) for r in results]
        else:
            idle = ("the login is not allowed: no abilitazioni",)
            results = [RuleResult(r.rule, r.outcome, idle if r.outcome.ok else (), False)
                       if r.rule.effect in ("grant", "refuse") else r for r in results]
        decision = self._decide(inp, tuple(results), granted.abilitazioni if granted else (),
                                granted.extra if granted else [])
        return Evaluation(tuple(results), decision)

    def _decide(self, inp: PolicyInput, results: tuple[RuleResult, ...],
                abilitazioni: tuple[Abilitazione, ...], extra: list[RuleTrace]) -> Decision:
        trace = (*(r.trace() for r in results), *extra)
        denies = [r.rule for r in results if r.fired and r.rule.deny is not None]
        if denies:
            deny = denies[0].deny
            assert deny is not None
            return Decision(allow=False, reason=deny.reason, message_it=deny.message.it,
                            message_en=deny.message.en, trace=trace)
        allows = [r.rule for r in results if r.fired and r.rule.allow is not None]
        if not allows:
            return Decision(allow=False, reason=DEFAULT_DENY_REASON,
                            message_it=AccessDenied.message.it,
                            message_en=AccessDenied.message.en, trace=trace)
        best = max(allows, key=lambda r: (r.allow.privilege.rank if r.allow else 0,
                                          -allows.index(r)))
        assert best.allow is not None
        privilege = best.allow.privilege
        req = self._requirements.get(inp.client.client_id)
        if req is not None:
            why = unmet_requirement(req.requirement, privilege, abilitazioni)
            trace = (*trace, RuleTrace(
                rule=f"requirement:{req.requirement.client}", source=req.source,
                fired=why is not None, effect="deny",
                why=why or f"met: {req.requirement.description}"))
            if why is not None:
                msg = req.requirement.message
                return Decision(allow=False, reason=req.requirement.reason, message_it=msg.it,
                                message_en=msg.en, trace=trace)
        return Decision(allow=True, reason=best.id, privilege=privilege,
                        acr=best.allow.acr or inp.event.acr, abilitazioni=abilitazioni,
                        trace=trace)

    def provider_can_satisfy(self, provider: str, required_privilege: Privilege | None) -> bool:
        """Could a login with ``provider`` ever be allowed with ``required_privilege``?

        True when some allow rule giving enough privilege might fire for this provider and
        no deny rule certainly fires for every login with it. The login page lists only
        such providers.
        """
        if isinstance(required_privilege, str):
            required_privilege = Privilege(required_privilege)
        key = (provider, required_privilege)
        found = self._can_satisfy.get(key)
        if found is None:  # the engine is immutable: the answer never changes
            found = self._can_satisfy[key] = self._could_allow(provider, required_privilege)
        return found

    def _could_allow(self, provider: str, required_privilege: Privilege | None) -> bool:
        known = {"provider": provider}
        for rule in self._rules:
            if rule.deny is not None and partial(rule.when, known) is True:
                return False
        return any(
            rule.allow is not None
            and rule.allow.privilege.satisfies(required_privilege)
            and partial(rule.when, known) is not False
            for rule in self._rules
        )


def fits(requirement: Requirement | None, abilitazione: Abilitazione) -> bool:
    """Does this abilitazione give what the relying party needs (no need: it fits)?"""
    need = requirement.abilitazione if requirement else None
    if need is None:
        return True
    return abilitazione.kind == need.kind and (
        not need.services_any or bool(set(abilitazione.services) & set(need.services_any)))


def unmet_requirement(requirement: Requirement, privilege: Privilege | None,
                      abilitazioni: tuple[Abilitazione, ...]) -> str | None:
    """Why a login does not meet ``requirement`` (None when it does)."""
    if requirement.privilege is not None and (
            privilege is None or not privilege.satisfies(requirement.privilege)):
        return (f"needs privilege {requirement.privilege.value}, this login gives "
                f"{privilege.value if privilege else 'none'}")
    need = requirement.abilitazione
    if need is not None and not any(fits(requirement, a) for a in abilitazioni):
        services = f" with one of [{', '.join(need.services_any)}]" if need.services_any else ""
        return f"needs an abilitazione {need.kind}{services}: none granted"
    return None


class PolicyHolder:
    """The engine in use. ``reload`` swaps it only for a good one; readers never see half a load."""

    def __init__(self, directory: Path, engine: PolicyEngine | None = None):
        """Load ``directory`` now (``PolicyError`` if broken: the broker must not start)."""
        self._directory = Path(directory)
        self._lock = threading.Lock()
        self._engine = engine if engine is not None else PolicyEngine.load(self._directory)
        self._problems: list[str] = []

    @property
    def directory(self) -> Path:
        return self._directory

    @property
    def engine(self) -> PolicyEngine:
        return self._engine  # one attribute read: atomic, always a complete engine

    @property
    def problems(self) -> list[str]:
        """What was wrong with the last reload ([] when it succeeded)."""
        return list(self._problems)

    def reload(self) -> list[str]:
        """Load the folder again; on problems keep the current engine and return them."""
        with self._lock:
            try:
                engine = PolicyEngine.load(self._directory)
            except PolicyError as exc:
                self._problems = list(exc.problems)
                return list(exc.problems)
            except OSError as exc:
                self._problems = [f"{self._directory}: {exc}"]
                return list(self._problems)
            self._engine = engine
            self._problems = []
            return []
