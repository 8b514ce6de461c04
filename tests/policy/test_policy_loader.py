"""Broken policy files: every problem reported at once, each with file:line and key path."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker.errors import PolicyError
from broker.policy import PolicyEngine

GOOD_RULE = """\
  - id: good
    description: fine
    when: {provider: pin}
    allow: {privilege: ordinario}
"""


def problems(directory: Path) -> list[str]:
    with pytest.raises(PolicyError) as info:
        PolicyEngine.load(directory)
    return info.value.problems


BROKEN = [
    # (name, file text, expected line, expected fragment after "file:line: ")
    ("bad yaml", "version: 1\nrules:\n  - id: a\n    when: {provider: pin\n", 5,
     "while parsing a flow mapping"),
    ("tab indentation", "version: 1\nrules:\n\t- id: a\n", 3, "found character '\\t'"),
    ("unknown top key", "version: 1\nrulez: []\n", 2, "rulez: unknown key"),
    ("missing rules", "version: 1\n", 1, "rules: required key is missing"),
    ("unsupported version", "version: 2\nrules: []\n", 1, "version: unsupported version 2"),
    ("version as text", "version: one\nrules: []\n", 1, "version: Input should be a valid integer"),
    ("unknown rule key", "version: 1\nrules:\n" + GOOD_RULE + "    priority: 3\n", 7,
     "rules[0].priority: unknown key"),
    ("wrong type: privilege", "version: 1\nrules:\n  - id: a\n    description: d\n"
     "    allow: {privilege: superuser}\n", 5, "rules[0].allow.privilege: Input should be"),
    ("wrong type: when is a list", "version: 1\nrules:\n  - id: a\n    description: d\n"
     "    when: [provider]\n    allow: {privilege: ordinario}\n", 5,
     "rules[0].when: Input should be a valid dictionary"),
    ("duplicate key", "version: 1\nrules:\n  - id: a\n    description: d\n"
     "    when: {provider: pin}\n    when: {provider: spid}\n", 6, "duplicate key 'when'"),
    ("two effects", "version: 1\nrules:\n  - id: a\n    description: d\n"
     "    allow: {privilege: ordinario}\n    deny: {reason: x, message: {it: a, en: b}}\n", 3,
     "rules[0]: Value error, a rule needs exactly one effect"),
    ("no effect", "version: 1\nrules:\n  - id: a\n    description: d\n", 3,
     "exactly one effect"),
    ("bad rule id", "version: 1\nrules:\n  - id: Has Spaces\n    description: d\n"
     "    allow: {privilege: ordinario}\n", 3, "rules[0].id: String should match pattern"),
    ("deny without English", "version: 1\nrules:\n  - id: a\n    description: d\n"
     "    deny:\n      reason: x\n      message: {it: no}\n", 7,
     "rules[0].deny.message.en: required key is missing"),
    ("unknown acr", "version: 1\nrules:\n  - id: a\n    description: d\n"
     "    allow: {privilege: ordinario, acr: level-9}\n", 5, "rules[0].allow.acr: Value error"),
    ("unknown field", "version: 1\nrules:\n  - id: a\n    description: d\n    when:\n"
     "      provder: pin\n    allow: {privilege: ordinario}\n", 6,
     "rules[0].when.provder: unknown field 'provder'"),
    ("unknown identity field", "version: 1\nrules:\n  - id: a\n    description: d\n    when:\n"
     "      identity.residenza: abroad\n    allow: {privilege: ordinario}\n", 6,
     "unknown identity field 'residenza'"),
    ("unknown client field", "version: 1\nrules:\n  - id: a\n    description: d\n    when:\n"
     "      client.secret: x\n    allow: {privilege: ordinario}\n", 6,
     "unknown client field 'secret'"),
    ("unknown operator", "version: 1\nrules:\n  - id: a\n    description: d\n    when:\n"
     "      now:\n        since: 2021-10-01\n    allow: {privilege: ordinario}\n", 7,
     "rules[0].when.now.since: unknown operator 'since'"),
    ("date operator with text", "version: 1\nrules:\n  - id: a\n    description: d\n"
     "    when:\n      now: {on_or_after: October}\n    allow: {privilege: ordinario}\n", 6,
     "'on_or_after' takes a date"),
    ("in with a scalar", "version: 1\nrules:\n  - id: a\n    description: d\n"
     "    when:\n      provider: {in: pin}\n    allow: {privilege: ordinario}\n", 6,
     "'in' takes a non-empty list"),
    ("empty any", "version: 1\nrules:\n  - id: a\n    description: d\n"
     "    when:\n      any: []\n    allow: {privilege: ordinario}\n", 6,
     "'any' takes a non-empty list"),
    ("nested error inside not/any", "version: 1\nrules:\n  - id: a\n    description: d\n"
     "    when:\n      not:\n        any:\n          - provider: pin\n          - levle: 2\n"
     "    allow: {privilege: ordinario}\n", 9, "rules[0].when.not.any[1].levle: unknown field"),
    ("top level is a list", "- a\n- b\n", 1, "(top): expected a mapping"),
]


@pytest.mark.parametrize(("name", "text", "line", "fragment"), BROKEN,
                         ids=[b[0] for b in BROKEN])
def test_broken_policy_file(tmp_path: Path, name: str, text: str, line: int,
                            fragment: str) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    found = problems(tmp_path)
    prefix = f"{path}:{line}: "
    assert any(p.startswith(prefix) and fragment in p for p in found), found


def test_duplicate_rule_id_across_files(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("version: 1\nrules:\n" + GOOD_RULE)
    (tmp_path / "b.yaml").write_text("version: 1\nrules:\n  - id: other\n    description: x\n"
                                     "    allow: {privilege: ordinario}\n" + GOOD_RULE)
    (found,) = problems(tmp_path)
    assert found.startswith(f"{tmp_path / 'b.yaml'}:6: ")
    assert "duplicate rule id 'good'" in found
    assert f"first at {tmp_path / 'a.yaml'}:3" in found


def test_all_problems_of_all_files_at_once(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("version: 1\nrules:\n" + GOOD_RULE + """\
  - id: b
    description: two problems in one rule
    when: {provider: pin, bogus: 1}
    allow: {privilege: superuser}
  - id: c
    description: a third in the next rule
    when: {level: {between: [1, 2]}}
    allow: {privilege: ordinario}
""")
    (tmp_path / "z.yaml").write_text("version: 1\nrules: {}\n")
    found = problems(tmp_path)
    assert len(found) == 4, found
    assert any("a.yaml:10: rules[1].allow.privilege" in p for p in found)
    assert any("a.yaml:9: rules[1].when.bogus: unknown field" in p for p in found)
    assert any("a.yaml:13: rules[2].when.level.between: unknown operator" in p for p in found)
    assert any("z.yaml:2: rules: Input should be a valid list" in p for p in found)


def test_empty_folder_is_an_error(tmp_path: Path) -> None:
    assert "no policy files" in problems(tmp_path)[0]
    assert "not found" in problems(tmp_path / "missing")[0]


def test_yml_files_are_flagged_not_silently_ignored(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("version: 1\nrules:\n" + GOOD_RULE)
    (tmp_path / "extra.yml").write_text("version: 1\nrules: []\n")
    (found,) = problems(tmp_path)
    assert "extra.yml:1: policy files end in .yaml" in found


def test_tests_folder_is_not_read_as_policy(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("version: 1\nrules:\n" + GOOD_RULE)
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "t.yaml").write_text("version: 1\ntests: []\n")
    assert [r.id for r in PolicyEngine.load(tmp_path).rules] == ["good"]
