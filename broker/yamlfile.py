"""Load admin-edited YAML into plain data while remembering the line of every key.

Policies, mappings and config are edited by people; each validation error must say
``file:line: key.path: message`` so they can find it. ``load`` returns a ``YamlDoc``
holding the plain data (dicts, lists, scalars; no Python objects) and a line index
keyed by the path of every mapping key and list item. Duplicate keys are errors
(PyYAML silently keeps the last one, which hides typos).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

PathKey = tuple[str | int, ...]


class YamlProblem(Exception):
    """A file that cannot be read as YAML; ``str()`` is ``file:line: message``."""

    def __init__(self, file: str, line: int, message: str):
        self.file, self.line, self.message = file, line, message
        super().__init__(f"{file}:{line}: {message}")


class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys and non-scalar keys."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise yaml.constructor.ConstructorError(
                    None, None, "a key must be a plain value, not a list or mapping",
                    key_node.start_mark,
                )
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first at line {seen[key]})",
                    key_node.start_mark,
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def format_path(path: Sequence[str | int]) -> str:
    """``("rules", 0, "when")`` -> ``rules[0].when``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top)"


@dataclass
class YamlDoc:
    """One loaded file: its plain data and where each key path is."""

    file: str
    data: Any
    lines: dict[PathKey, int] = field(default_factory=dict)

    def line(self, path: Iterable[str | int]) -> int:
        """Line of ``path``, or of its longest known prefix (1 if nothing matches)."""
        parts = tuple(path)
        while parts:
            if parts in self.lines:
                return self.lines[parts]
            parts = parts[:-1]
        return self.lines.get((), 1)

    def where(self, path: Iterable[str | int]) -> str:
        return f"{self.file}:{self.line(path)}"

    def problem(self, path: Sequence[str | int], message: str) -> str:
        """The standard error line: ``file:line: key.path: message``."""
        return f"{self.where(path)}: {format_path(path)}: {message}"

    def pydantic_problems(self, exc: ValidationError, prefix: Sequence[str | int] = (),
                          data: Any = None) -> list[str]:
        """One ``file:line: path: message`` per pydantic error, located in this file.

        ``data`` is what was validated (default: the whole document) and ``prefix`` its
        path in the document. Pydantic adds union members and validator names to error
        locations; only parts that exist in the data (or a final missing key) are kept.
        """
        node_root = self.data if data is None else data
        out = []
        for err in exc.errors(include_url=False):
            path = list(prefix)
            node = node_root
            loc = list(err["loc"])
            for i, part in enumerate(loc):
                in_dict = isinstance(node, dict) and part in node
                in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
                if in_dict or in_list:
                    node = node[part]
                    path.append(part)
                elif i == len(loc) - 1 and isinstance(part, str) and err["type"] == "missing":
                    path.append(part)
            message = err["msg"]
            if err["type"] == "extra_forbidden":
                message = "unknown key"
            elif err["type"] == "missing":
                message = "required key is missing"
            elif err["type"] == "string_type" and isinstance(err.get("input"), bool):
                message += " (yes/no/on/off/true/false are booleans in YAML: quote text)"
            out.append(self.problem(path, message))
        return out


def _index(node: yaml.Node, path: PathKey, lines: dict[PathKey, int]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node)
            sub = (*path, key)
            lines[sub] = key_node.start_mark.line + 1
            _index(value_node, sub, lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            sub = (*path, i)
            lines[sub] = item.start_mark.line + 1
            _index(item, sub, lines)


def loads(text: str, file: str = "<string>") -> YamlDoc:
    """Parse one YAML document; raise ``YamlProblem`` with file:line on any syntax error."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return YamlDoc(file, None, {(): 1})
        lines: dict[PathKey, int] = {(): node.start_mark.line + 1}
        _index(node, (), lines)
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        message = " ".join(p for p in (exc.context, exc.problem) if p) or "invalid YAML"
        raise YamlProblem(file, line, message) from None
    except yaml.YAMLError as exc:
        raise YamlProblem(file, 1, str(exc)) from None
    finally:
        loader.dispose()
    return YamlDoc(file, data, lines)


def load(path: Path) -> YamlDoc:
    """Read and parse ``path``; unreadable files and bad YAML raise ``YamlProblem``."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise YamlProblem(str(path), 1, f"cannot read file: {exc}") from None
    return loads(text, str(path))
