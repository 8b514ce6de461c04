"""A ``{ref: ..}`` operand holds whatever the other field holds: a value of the wrong kind
fails the test like a missing one instead of breaking the login with a TypeError."""

from __future__ import annotations

from typing import Any

import pytest

from broker.policy.conditions import Leaf, Missing, Ref, Resolver, evaluate, holds


def fields(**values: Any) -> Resolver:
    return lambda path: values.get(path, Missing)


@pytest.mark.parametrize(("op", "actual", "other", "ok"), [
    ("gt", 5, 3, True),
    ("gt", 5, None, False),
    ("gte", 5, "5", False),
    ("lt", 1, True, False),  # true is not 1 (as for eq)
    ("in", "a", ["a", "b"], True),
    ("in", "a", None, False),
    ("in", "a", "abc", False),  # a text is not a list of letters
    ("not_in", "c", ["a", "b"], True),
    ("not_in", "c", 3, False),
    ("contains", ["a", "b"], "a", True),
    ("contains", "abc", "b", True),
    ("contains", "abc", 1, False),
    ("contains", ["x"], ["x"], False),
    ("before", "2020-01-01", "2020-01-02", True),
    ("before", "2020-01-01", None, False),
])
def test_ref_operand_of_any_kind(op: str, actual: Any, other: Any, ok: bool) -> None:
    leaf = Leaf("x", op, Ref("y"), 1)
    get = fields(x=actual, y=other)
    assert holds(leaf, get) is ok
    assert evaluate(leaf, get).ok is ok


def test_contains_does_not_take_true_for_one() -> None:
    assert not holds(Leaf("x", "contains", True, 1), fields(x=[1, 2]))
    assert holds(Leaf("x", "contains", 1, 1), fields(x=(1, 2)))
