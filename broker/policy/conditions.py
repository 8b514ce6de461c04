"""The condition language of policy rules: compiled from YAML, evaluated with reasons.

A ``when`` block is a mapping; every entry must hold (AND). An entry is either a
combinator (``all: [..]``, ``any: [..]``, ``not: {..}``) or a *field* with a test::

    when:
      provider: pin                        # equals
      level: [2, 3]                        # one of
      event.pin_kind: {ne: telephone}      # operator form
      now: {on_or_after: 2021-10-01}       # dates (now is read in Europe/Rome)
      not: {identity.residence: abroad, identity.italian_document: false}
      some:                                # a list of facts: at least one item matches
        of: facts.deleghe
        where:
          item.form: SC64
          item.valid_until: {on_or_after: {ref: now}}   # compare with another field

Fields name one value of the input (see ``FIELDS``); ``facts.<a>.<b>`` reaches into
directory facts and ``some`` quantifies over lists of them (``item.*`` is the current
element), which is how later rules (intermediaries, comuni, operators, delegations)
plug in without a new language. An operand may be ``{ref: <field>}`` instead of a
literal. Date comparisons are by calendar day in Rome when either side is a plain date.
Every evaluation returns an ``Outcome`` that says what was compared with what, so
``explain`` and the audit trail can show why a rule fired or not. A missing value never
satisfies a test (except ``exists: false``), so a rule cannot fire by accident on absent
data.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from broker.fiscal_code import looks_like_person, mask
from broker.model import Identity
from broker.yamlfile import YamlDoc

ROME = ZoneInfo("Europe/Rome")

# Top-level fields and what they are; ``event.*``, ``identity.*``, ``client.*`` and
# ``facts.*`` take a sub-path.
FIELDS: dict[str, str] = {
    "provider": "the provider that authenticated (pin, spid, cie, cns)",
    "acr": "the authentication context class reference of the event",
    "level": "SPID/CIE level 1, 2 or 3 read from the acr (missing for pin and cns)",
    "idp": "the identity provider entity id (SPID, CIE)",
    "amr": "the authentication methods (a list)",
    "auth_time": "when the person authenticated",
    "now": "the current time from the injected clock",
}
PREFIXES: dict[str, str] = {
    "event": "a raw attribute of the event, e.g. event.pin_privilege",
    "identity": "a field of the mapped identity, e.g. identity.residence, identity.extra.spidCode",
    "client": "the relying party: client.id, client.name, client.tags, client.required_privilege",
    "facts": "a directory fact, e.g. facts.operator.comune",
}
CLIENT_FIELDS = ("id", "client_id", "name", "tags", "required_privilege")
IDENTITY_FIELDS = tuple(Identity.model_fields)

COMBINATORS = ("all", "any", "not", "some")
OPERATORS: dict[str, str] = {
    "eq": "=", "ne": "≠", "in": "in", "not_in": "not in", "contains": "contains",
    "exists": "exists", "gt": ">", "gte": "≥", "lt": "<", "lte": "≤",
    "before": "before", "after": "after", "on_or_before": "on or before",
    "on_or_after": "on or after",
}
_DATE_OPS = ("before", "after", "on_or_before", "on_or_after")
_NUM_OPS = ("gt", "gte", "lt", "lte")

Missing = object()


class Cond:
    """A compiled condition."""

    line: int


@dataclass(frozen=True)
class Leaf(Cond):
    path: str
    op: str
    expected: Any
    line: int


@dataclass(frozen=True)
class All(Cond):
    items: tuple[Cond, ...]
    line: int


@dataclass(frozen=True)
class AnyOf(Cond):
    items: tuple[Cond, ...]
    line: int


@dataclass(frozen=True)
class Not(Cond):
    item: Cond
    line: int


@dataclass(frozen=True)
class Some(Cond):
    """True when at least one element of the list at ``of`` satisfies ``where``."""

    of: str
    where: Cond
    line: int


@dataclass(frozen=True)
class Ref:
    """An operand that is another field's value (``{ref: now}``)."""

    path: str


@dataclass(frozen=True)
class Outcome:
    """The result of one condition and the reason, as text an admin can read."""

    ok: bool
    text: str
    children: tuple[Outcome, ...] = ()
    kind: str = "leaf"  # leaf, all, any, not, some


# --- compiling -------------------------------------------------------------------------

def compile_when(doc: YamlDoc, path: tuple[str | int, ...], raw: Any,
                 problems: list[str], *, in_some: bool = False) -> Cond | None:
    """Compile a ``when`` mapping found at ``path`` of ``doc``; append problems, None if any.

    ``in_some`` allows ``item.*`` fields (a grant's ``where`` is evaluated per item).
    """
    before = len(problems)
    cond = _compile_map(doc, path, raw, problems, in_some)
    return cond if len(problems) == before else None


def _compile_map(doc: YamlDoc, path: tuple[str | int, ...], raw: Any,
                 problems: list[str], in_some: bool) -> Cond:
    line = doc.line(path)
    if raw is None:
        return All((), line)
    if not isinstance(raw, dict):
        problems.append(doc.problem(path, "conditions must be a mapping of field: test"))
        return All((), line)
    items: list[Cond] = []
    for key, value in raw.items():
        sub = (*path, key)
        if not isinstance(key, str):
            problems.append(doc.problem(path, f"condition key {key!r} must be text"))
            continue
        if key in ("all", "any"):
            if not isinstance(value, list) or not value:
                problems.append(doc.problem(sub, f"'{key}' takes a non-empty list of conditions"))
                continue
            children = tuple(_compile_map(doc, (*sub, i), v, problems, in_some)
                             for i, v in enumerate(value))
            items.append((All if key == "all" else AnyOf)(children, doc.line(sub)))
        elif key == "not":
            items.append(Not(_compile_map(doc, sub, value, problems, in_some), doc.line(sub)))
        elif key == "some":
            some = _compile_some(doc, sub, value, problems, in_some)
            if some is not None:
                items.append(some)
        else:
            items.extend(_compile_field(doc, sub, key, value, problems, in_some))
    return items[0] if len(items) == 1 else All(tuple(items), line)


def _compile_some(doc: YamlDoc, path: tuple[str | int, ...], raw: Any, problems: list[str],
                  in_some: bool) -> Cond | None:
    if not isinstance(raw, dict) or set(raw) != {"of", "where"}:
        problems.append(doc.problem(path, "'some' takes exactly 'of: <field>' and "
                                    "'where: <conditions on item.*>'"))
        return None
    of = raw["of"]
    why = check_field(of, in_some) if isinstance(of, str) else "'of' must name a field"
    if why:
        problems.append(doc.problem((*path, "of"), why))
        return None
    where = _compile_map(doc, (*path, "where"), raw["where"], problems, True)
    return Some(of, where, doc.line(path))


def check_field(name: str, in_some: bool = False) -> str | None:
    """None when ``name`` is a field the language knows, else why not."""
    if name in FIELDS or (in_some and name == "item"):
        return None
    if name.startswith("item."):
        if not in_some:
            return f"{name!r}: item.* is only known inside 'some: {{of: ..., where: ...}}'"
        return None if all(name.split(".")) else f"field {name!r} has an empty part"
    root, dot, rest = name.partition(".")
    if not dot or root not in PREFIXES:
        known = ", ".join([*FIELDS, *(f"{p}.*" for p in PREFIXES)])
        return f"unknown field {name!r} (known: {known})"
    if not rest or any(not part for part in rest.split(".")):
        return f"field {name!r} has an empty part"
    if root == "identity":
        head, _, tail = rest.partition(".")
        if head not in IDENTITY_FIELDS:
            return f"unknown identity field {head!r} (known: {', '.join(IDENTITY_FIELDS)})"
        if tail and head != "extra":
            return f"identity.{head} has no sub-fields"
    if root == "client" and rest not in CLIENT_FIELDS:
        return f"unknown client field {rest!r} (known: {', '.join(CLIENT_FIELDS)})"
    if root == "event" and "." in rest:
        return "event attributes are flat: event.<attribute name>"
    return None


def _compile_field(doc: YamlDoc, path: tuple[str | int, ...], name: str, value: Any,
                   problems: list[str], in_some: bool) -> list[Cond]:
    why = check_field(name, in_some)
    if why:
        problems.append(doc.problem(path, why))
        return []
    line = doc.line(path)
    if isinstance(value, dict):
        if not value:
            problems.append(doc.problem(path, "empty test: give an operator such as eq or in"))
        out: list[Cond] = []
        for op, expected in value.items():
            where = (*path, op)
            if op not in OPERATORS:
                problems.append(doc.problem(where, f"unknown operator {op!r} "
                                            f"(known: {', '.join(OPERATORS)})"))
                continue
            if isinstance(expected, dict) and set(expected) == {"ref"} and op != "exists":
                ref = expected["ref"]
                why = check_field(ref, in_some) if isinstance(ref, str) else "'ref' names a field"
                if why:
                    problems.append(doc.problem((*where, "ref"), why))
                    continue
                out.append(Leaf(name, op, Ref(ref), doc.line(where)))
                continue
            why = _check_operand(op, expected)
            if why:
                problems.append(doc.problem(where, why))
                continue
            out.append(Leaf(name, op, _freeze(expected), doc.line(where)))
        return out
    if isinstance(value, list):
        if not value:
            problems.append(doc.problem(path, "empty list: nothing could match"))
            return []
        return [Leaf(name, "in", _freeze(value), line)]
    return [Leaf(name, "eq", value, line)]


def _check_operand(op: str, expected: Any) -> str | None:
    if isinstance(expected, dict):
        return f"'{op}' does not take a mapping (except {{ref: <field>}})"
    if op in ("in", "not_in") and (not isinstance(expected, list) or not expected):
        return f"'{op}' takes a non-empty list"
    if op == "exists" and not isinstance(expected, bool):
        return "'exists' takes true or false"
    if op in _NUM_OPS and (isinstance(expected, bool) or not isinstance(expected, int | float)):
        return f"'{op}' takes a number"
    if op in _DATE_OPS and not isinstance(expected, date):
        return f"'{op}' takes a date (YYYY-MM-DD) or a date and time (YYYY-MM-DDTHH:MM:SS+01:00)"
    return None


def _freeze(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


# --- evaluating ------------------------------------------------------------------------

Resolver = Callable[[str], Any]  # returns the value or ``Missing``


def show(value: Any) -> str:
    """A value as explain prints it; personal codici fiscali are masked."""
    if value is Missing or value is None:
        return "missing"
    if isinstance(value, Ref):
        return value.path
    if isinstance(value, Enum):
        return repr(value.value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={show(v)}" for k, v in value.items()) + "}"
    if isinstance(value, str):
        return repr(mask(value)) if looks_like_person(value) else repr(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return "[" + ", ".join(show(v) for v in value) + "]"
    if hasattr(value, "value"):  # enums
        return repr(value.value)
    return repr(value)


def _as_dates(actual: Any, expected: Any) -> tuple[date, date] | None:
    """Make both sides comparable: calendar days in Rome if either is a plain date,
    else aware datetimes (naive ones are Rome time). Text in ISO form is read as a date."""
    pair: list[date] = []
    for value in (actual, expected):
        if isinstance(value, str):
            try:
                text = value.strip()
                value = date.fromisoformat(text) if len(text) == 10 else \
                    datetime.fromisoformat(text)
            except ValueError:
                return None
        if not isinstance(value, date):
            return None
        if isinstance(value, datetime) and value.tzinfo is None:
            value = value.replace(tzinfo=ROME)
        pair.append(value)
    a, e = pair
    if not isinstance(a, datetime) or not isinstance(e, datetime):
        a = a.astimezone(ROME).date() if isinstance(a, datetime) else a
        e = e.astimezone(ROME).date() if isinstance(e, datetime) else e
    return a, e


def _same(actual: Any, expected: Any) -> bool:
    """Equality that does not confuse true with 1 or false with 0."""
    if isinstance(actual, bool) != isinstance(expected, bool):
        return False
    return bool(actual == expected)


def _number(value: Any) -> float | None:
    """``value`` as a number to compare, or None: true and false are not 1 and 0."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value


def _test(op: str, actual: Any, expected: Any) -> bool:
    """One test. ``expected`` is a checked literal (``_check_operand``) or, for a
    ``{ref: ..}``, whatever the other field holds: a value of the wrong kind there fails
    the test like a missing one."""
    if op == "exists":  # ``expected`` is true or false
        present = actual is not Missing and actual is not None
        return present == bool(expected)
    if actual is Missing or actual is None:
        return op == "eq" and expected is None
    if op == "eq":
        return _same(actual, expected)
    if op == "ne":
        return not _same(actual, expected)
    if op in ("in", "not_in"):
        if not isinstance(expected, list | tuple | set | frozenset):
            return False
        found = any(_same(actual, e) for e in expected)
        return found if op == "in" else not found
    if op == "contains":
        if isinstance(actual, str):
            return isinstance(expected, str) and expected in actual
        return isinstance(actual, list | tuple | set | frozenset) and any(
            _same(item, expected) for item in actual)
    if op in _NUM_OPS:
        a, e = _number(actual), _number(expected)
        if a is None or e is None:
            return False
        return {"gt": a > e, "gte": a >= e, "lt": a < e, "lte": a <= e}[op]
    pair = _as_dates(actual, expected)
    if pair is None:
        return False
    d, when = pair
    return {"before": d < when, "after": d > when,
            "on_or_before": d <= when, "on_or_after": d >= when}[op]


def _leaf_text(leaf: Leaf) -> str:
    """The condition as explain prints it: the same for every login, so made once."""
    try:
        return _leaf_text_once(leaf)
    except TypeError:  # an unhashable expected value (a mapping): not cached
        return _leaf_text_of(leaf)


@lru_cache(maxsize=4096)
def _leaf_text_once(leaf: Leaf) -> str:
    return _leaf_text_of(leaf)


def _leaf_text_of(leaf: Leaf) -> str:
    if leaf.op == "exists":
        return f"{leaf.path} {'exists' if leaf.expected else 'is missing'}"
    return f"{leaf.path} {OPERATORS[leaf.op]} {show(leaf.expected)}"


def evaluate(cond: Cond, resolve: Resolver) -> Outcome:
    """Evaluate every part of ``cond`` (no short cut: explain shows them all)."""
    if isinstance(cond, Leaf):
        actual = resolve(cond.path)
        if isinstance(cond.expected, Ref):
            other = resolve(cond.expected.path)
            ok = other is not Missing and _test(cond.op, actual, other)
            mark = "✓" if ok else "✗"
            return Outcome(ok, f"{_leaf_text(cond)} {mark} (is {show(actual)}, "
                               f"{cond.expected.path} is {show(other)})")
        ok = _test(cond.op, actual, cond.expected)
        mark = "✓" if ok else "✗"
        return Outcome(ok, f"{_leaf_text(cond)} {mark} (is {show(actual)})")
    if isinstance(cond, Some):
        return _evaluate_some(cond, resolve)
    if isinstance(cond, Not):
        inner = evaluate(cond.item, resolve)
        return Outcome(not inner.ok, f"not ({inner.text}) {'✓' if not inner.ok else '✗'}",
                       (inner,), "not")
    assert isinstance(cond, All | AnyOf)
    children = tuple(evaluate(c, resolve) for c in cond.items)
    if isinstance(cond, All):
        ok = all(c.ok for c in children)
        text = "; ".join(c.text for c in children) if children else "always"
        return Outcome(ok, text, children, "all")
    ok = any(c.ok for c in children)
    text = "any of (" + " | ".join(c.text for c in children) + f") {'✓' if ok else '✗'}"
    return Outcome(ok, text, children, "any")


def holds(cond: Cond, resolve: Resolver) -> bool:
    """``evaluate(cond, resolve).ok`` without the reasons, stopping at the first answer.

    For the rules a login does not need explained (they did not fire): the same tests
    (``_test``), the same treatment of missing values and references.
    """
    if isinstance(cond, Leaf):
        if isinstance(cond.expected, Ref):
            other = resolve(cond.expected.path)
            return other is not Missing and _test(cond.op, resolve(cond.path), other)
        return _test(cond.op, resolve(cond.path), cond.expected)
    if isinstance(cond, Some):
        items = resolve(cond.of)
        return isinstance(items, list | tuple) and any(
            holds(cond.where, item_resolver(resolve, item)) for item in items)
    if isinstance(cond, Not):
        return not holds(cond.item, resolve)
    assert isinstance(cond, All | AnyOf)
    if isinstance(cond, All):
        return all(holds(c, resolve) for c in cond.items)
    return any(holds(c, resolve) for c in cond.items)


def item_resolver(resolve: Resolver, item: Any) -> Resolver:
    """A resolver where ``item`` and ``item.<path>`` name one element of a list of facts."""

    def inner(path: str) -> Any:
        if path == "item":
            return item
        if path.startswith("item."):
            node = item
            for part in path[5:].split("."):
                if isinstance(node, dict) and part in node:
                    node = node[part]
                else:
                    return Missing
            return Missing if node is None else node
        return resolve(path)

    return inner


def _evaluate_some(cond: Some, resolve: Resolver) -> Outcome:
    items = resolve(cond.of)
    if not isinstance(items, list | tuple):
        return Outcome(False, f"some of {cond.of} ✗ (is {show(items)})", (), "some")
    children = [evaluate(cond.where, item_resolver(resolve, item)) for item in items]
    ok = any(c.ok for c in children)
    matched = sum(c.ok for c in children)
    text = (f"some of {cond.of} {'✓' if ok else '✗'} ({matched} of {len(children)} match"
            + "".join(f"; [{i}] {c.text}" for i, c in enumerate(children)) + ")")
    return Outcome(ok, text, tuple(children), "some")


def partial(cond: Cond, known: dict[str, Any]) -> bool | None:
    """Three-valued evaluation knowing only some fields: True, False or None (cannot tell).

    Used to ask "could this rule ever fire for provider X" without a person at hand.
    """
    if isinstance(cond, Some):
        return None
    if isinstance(cond, Leaf):
        if cond.path not in known or isinstance(cond.expected, Ref):
            return None
        return _test(cond.op, known[cond.path], cond.expected)
    if isinstance(cond, Not):
        inner = partial(cond.item, known)
        return None if inner is None else not inner
    assert isinstance(cond, All | AnyOf)
    values = [partial(c, known) for c in cond.items]
    if isinstance(cond, All):
        if any(v is False for v in values):
            return False
        return True if all(v is True for v in values) else None
    if any(v is True for v in values):
        return True
    return False if all(v is False for v in values) else None


def leaves(cond: Cond) -> Sequence[Leaf]:
    """Every field test in ``cond`` (for tooling: which fields a policy reads)."""
    if isinstance(cond, Leaf):
        return [cond]
    if isinstance(cond, Not):
        return leaves(cond.item)
    if isinstance(cond, Some):
        return leaves(cond.where)
    assert isinstance(cond, All | AnyOf)
    return [leaf for c in cond.items for leaf in leaves(c)]
