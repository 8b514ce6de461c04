"""The line-aware YAML loader: errors an admin sees point at the right line."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict, ValidationError

from broker.yamlfile import YamlProblem, format_path, load, loads

TEXT = """\
version: 1
rules:
  - id: a
    when:
      provider: pin
  - id: b
    allow: {privilege: dispositivo}
"""


def test_lines_of_key_paths() -> None:
    doc = loads(TEXT, "p.yaml")
    assert doc.data == {"version": 1, "rules": [
        {"id": "a", "when": {"provider": "pin"}},
        {"id": "b", "allow": {"privilege": "dispositivo"}}]}
    assert doc.line(("version",)) == 1
    assert doc.line(("rules", 0, "when", "provider")) == 5
    assert doc.line(("rules", 1)) == 6
    assert doc.line(("rules", 1, "allow", "privilege")) == 7
    # unknown paths fall back to the longest known prefix
    assert doc.line(("rules", 1, "nope", "deeper")) == 6
    assert doc.problem(("rules", 0, "when"), "bad") == "p.yaml:4: rules[0].when: bad"


@pytest.mark.parametrize(("text", "line", "fragment"), [
    ("a: 1\nb: 2\na: 3\n", 3, "duplicate key 'a' (first at line 1)"),
    ("top:\n  x: 1\n  y: 2\n  x: 3\n", 4, "duplicate key 'x'"),
    ("a: [1, 2\nb: 3\n", 2, "expected ','"),
    ("a: 1\n b: 2\n", 2, "mapping values are not allowed"),
    ("? [1, 2]\n: x\n", 1, "key must be a plain value"),
    ("a: !!python/object:os.system x\n", 1, "could not determine a constructor"),
    ("--- 1\n--- 2\n", 2, "expected a single document"),
])
def test_bad_yaml_says_where(text: str, line: int, fragment: str) -> None:
    with pytest.raises(YamlProblem) as info:
        loads(text, "bad.yaml")
    assert info.value.line == line
    assert str(info.value).startswith(f"bad.yaml:{line}: ")
    assert fragment in str(info.value)


def test_empty_file_is_none() -> None:
    assert loads("", "e.yaml").data is None


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(YamlProblem) as info:
        load(tmp_path / "missing.yaml")
    assert "cannot read file" in str(info.value)


class Inner(BaseModel):
    model_config = ConfigDict(extra="forbid")
    privilege: int


class Outer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    items: list[Inner]


def test_pydantic_errors_located() -> None:
    doc = loads("name: x\nitems:\n  - privilege: 1\n  - privilege: two\n    extra: 1\n", "m.yaml")
    with pytest.raises(ValidationError) as info:
        Outer.model_validate(doc.data)
    problems = doc.pydantic_problems(info.value)
    assert "m.yaml:4: items[1].privilege: Input should be a valid integer" in problems[0]
    assert problems[1] == "m.yaml:5: items[1].extra: unknown key"


def test_pydantic_missing_key_located_at_parent() -> None:
    doc = loads("items:\n  - {}\n", "m.yaml")
    with pytest.raises(ValidationError) as info:
        Outer.model_validate(doc.data)
    problems = doc.pydantic_problems(info.value)
    assert "m.yaml:1: name: required key is missing" in problems
    assert "m.yaml:2: items[0].privilege: required key is missing" in problems


def test_format_path() -> None:
    assert format_path(()) == "(top)"
    assert format_path(("rules", 3, "when", "not")) == "rules[3].when.not"


class Named(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str


def test_yaml_boolean_pitfall_gets_a_hint() -> None:
    doc = loads("reason: off\n", "b.yaml")
    with pytest.raises(ValidationError) as info:
        Named.model_validate(doc.data)
    (problem,) = doc.pydantic_problems(info.value)
    assert problem.startswith("b.yaml:1: reason: Input should be a valid string")
    assert "quote text" in problem
