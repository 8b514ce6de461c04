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
        f"  person {mask(idn.fiscal_code)}, residence {show(idn.residence)}, "
        f"italian_document {show(idn.italian_document)}",
    ]
    if ev.attributes:
        attrs = ", ".join(f"{k}={show(v)}" for k, v in sorted(ev.attributes.items()))
        lines.append(f"  event attributes: {attrs}")
    lines.append(f"  client {cl.client_id}, tags {show(cl.tags)}, required privilege "
                 f"{show(cl.required_privilege)}")
    lines.append(f"  now {show(inp.now)}")
    if inp.facts:
        lines.append(f"  facts: {', '.join(sorted(inp.facts))}")
    return lines


def format_evaluation(inp: PolicyInput, evaluation: Evaluation) -> str:
    """The full explanation as text, ending with the decision."""
    lines = [*format_input(inp), "", "Rules:"]
    for result in evaluation.results:
        rule = result.rule
        status = "FIRED" if result.fired else "not fired"
        lines.append(f"  [{status}] {rule.effect} {rule.id} ({rule.source})")
        lines.append(f"      {rule.description}")
        lines += _outcome_lines(result.outcome, "      ")
    d = evaluation.decision
    lines += ["", "Decision:"]
    if d.allow:
        lines.append(f"  ALLOW by {d.reason}: privilege {d.privilege}, acr {d.acr}")
        abil = ", ".join(a.kind for a in d.abilitazioni) or "none"
        lines.append(f"  abilitazioni: {abil}")
    else:
        lines.append(f"  DENY ({d.reason})")
        lines.append(f"  message (it): {d.message_it}")
        lines.append(f"  message (en): {d.message_en}")
    return "\n".join(lines) + "\n"
