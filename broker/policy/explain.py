"""Text rendering of an evaluation: the input, every rule with why it fired or not, the decision.

Used by ``varco policy explain``; the same ``PolicyEngine.evaluate`` the server runs.
Personal codici fiscali are masked.
"""

from __future__ import annotations

from broker.fiscal_code import mask
from broker.policy.conditions import Outcome, show
from broker.policy.engine import Evaluation
from broker.policy.inputs import PolicyInput, level_of


def _outcome_lines(outcome: Outcome, indent: str) -> list[str]:
    if outcome.kind == "leaf":
        return [indent + outcome.text]
    if outcome.kind == "all":
        if not outcome.children:
            return [indent + "(no conditions: always) ✓"]
        return [line for c in outcome.children for line in _outcome_lines(c, indent)]
    mark = "✓" if outcome.ok else "✗"
    if outcome.kind == "some":
        head = outcome.text.split(" (")[0] if outcome.children else outcome.text
        lines = [f"{indent}{head}"]
        for i, child in enumerate(outcome.children):
            lines.append(f"{indent}    [{i}] {'✓' if child.ok else '✗'}")
            lines += _outcome_lines(child, indent + "        ")
        return lines
    head = "any of:" if outcome.kind == "any" else "not:"
    return [f"{indent}{head} {mark}",
            *(line for c in outcome.children for line in _outcome_lines(c, indent + "    "))]


def format_input(inp: PolicyInput) -> list[str]:
    ev, idn, cl = inp.event, inp.identity, inp.client
    lines = [
        "Input:",
        f"  provider {ev.provider}, acr {ev.acr}, level {show(level_of(ev.acr))}"
        + (f", idp {ev.idp}" if ev.idp else ""),
        f"  person {mask(idn.subject)}, residence {show(idn.residence)}, "
        f"italian_document {show(idn.italian_document)}",
    ]
    if ev.attributes:
        attrs = ", ".join(f"{k}={show(v)}" for k, v in sorted(ev.attributes.items()))
        lines.append(f"  event attributes: {attrs}")
    lines.append(f"  client {cl.client_id}, tags {show(cl.tags)}, required privilege "
                 f"{show(cl.required_privilege)}")
    lines.append(f"  now {show(inp.now)}")
    for name in sorted(inp.facts):
        value = inp.facts[name]
        if isinstance(value, list):
            lines.append(f"  facts.{name}: {len(value)} item(s)")
            for i, item in enumerate(value):
                text = ", ".join(f"{k}={_fact(v)}" for k, v in item.items()) \
                    if isinstance(item, dict) else _fact(item)
                lines.append(f"    [{i}] {text}")
        else:
            lines.append(f"  facts.{name}: {_fact(value)}")
    return lines


def _fact(value: object) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={_fact(v)}" for k, v in value.items()) + "}"
    return show(value)


def format_evaluation(inp: PolicyInput, evaluation: Evaluation) -> str:
    """The full explanation as text, ending with the decision."""
    lines = [*format_input(inp), "", "Rules:"]
    for result in evaluation.results:
        rule = result.rule
        status = "FIRED" if result.fired else "not fired"
        lines.append(f"  [{status}] {rule.effect} {rule.id} ({rule.source})")
        lines.append(f"      {rule.description}")
        lines += _outcome_lines(result.outcome, "      ")
        lines += [f"      => {note}" for note in result.notes]
    d = evaluation.decision
    extra = [t for t in d.trace if t.rule not in {r.rule.id for r in evaluation.results}]
    for t in extra:
        lines.append(f"  [{'FIRED' if t.fired else 'not fired'}] {t.effect} {t.rule} "
                     f"({t.source})")
        lines.append(f"      {t.why}")
    lines += ["", "Decision:"]
    if d.allow:
        lines.append(f"  ALLOW by {d.reason}: privilege {d.privilege}, acr {d.acr}")
        if not d.abilitazioni:
            lines.append("  abilitazioni: none")
        for a in d.abilitazioni:
            scope = ", ".join(f"{k}={show(v)}" for k, v in sorted(a.scope.items()))
            lines.append(f"  abilitazione: {a.kind} ({scope})"
                         + (f" services [{', '.join(a.services)}]" if a.services else ""))
    else:
        lines.append(f"  DENY ({d.reason})")
        lines.append(f"  message (it): {d.message_it}")
        lines.append(f"  message (en): {d.message_en}")
    return "\n".join(lines) + "\n"
