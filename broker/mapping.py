"""Declarative mapping from a provider's raw attributes to the one ``Identity``.

Each provider has ``mappings/<provider>.yaml`` (data, not code) saying, per Identity
field, which raw attribute(s) it comes from and which of a small fixed set of
transforms applies. Adding a provider means adding a file, never code here. The file
is validated at load (unknown keys, unknown transforms and unknown fields are errors,
all reported at once as ``file:line``); ``MappingSet.map`` is pure.

Example::

    version: 1
    fields:
      fiscal_code: {from: fiscalNumber, transform: [{strip_prefix: "TINIT-"}, fiscal_code]}
      given_name: name
      date_of_birth: {from: dateOfBirth, transform: [date]}
    extra:
      spidCode: spidCode

A provider whose people may have no codice fiscale (an eID of another EU state) maps
their identifier instead, under the scheme the RP will see (``<scheme>_person_identifier``);
``fiscal_code`` is then optional, and one of the two must be present in every login::

    identifiers:
      eidas: {from: spidCode, required: true}
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from broker.errors import InvalidFiscalCode, PolicyError, ProviderError, Text
from broker.fiscal_code import normalize_person
from broker.model import AuthEvent, Identity
from broker.yamlfile import YamlDoc, YamlProblem, load

SUPPORTED_VERSIONS = (1,)

PROVIDER_CF_MESSAGE = Text(
    "Il gestore dell'identità ha fornito un codice fiscale mancante o non valido. "
    "Contatta il tuo gestore dell'identità.",
    "The identity provider sent a missing or invalid codice fiscale. "
    "Please contact your identity provider.",
)

_TRUE = {"true", "yes", "si", "sì", "1", "y", "s"}
_FALSE = {"false", "no", "0", "n"}


class TransformError(ValueError):
    """A transform could not handle a value; the message never contains the value."""


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise TransformError(f"expected text, got {type(value).__name__}")


def _to_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    raw = _text(value).strip()
    for fmt in ("%Y-%m-%d", "%d/%m/%Y"):
        try:
            return datetime.strptime(raw, fmt).date()
        except ValueError:
            continue
    raise TransformError("not a date (expected YYYY-MM-DD or dd/mm/yyyy)")


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raw = _text(value).strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise TransformError("not a yes/no value")


def _fiscal_code(value: Any) -> str:
    return normalize_person(_text(value))


# Transforms without an argument.
# One step of a field's transform: an attribute value in, the transformed value out.
Transform = Callable[[Any], Any]

_SIMPLE: dict[str, Transform] = {
    "strip": lambda v: _text(v).strip(),
    "upper": lambda v: _text(v).upper(),
    "lower": lambda v: _text(v).lower(),
    "fiscal_code": _fiscal_code,
    "date": _to_date,
    "boolean": _to_bool,
    "text": _text,
}


def _strip_prefix(arg: Any) -> Transform:
    prefix = str(arg)

    def run(v: Any) -> Any:
        s = _text(v).strip()
        return s[len(prefix):] if s.upper().startswith(prefix.upper()) else s

    return run


def _value_map(arg: Any) -> Transform:
    table = {str(k).lower(): v for k, v in arg.items()}

    def run(v: Any) -> Any:
        key = str(v).strip().lower()
        if key not in table:
            raise TransformError("value not listed in the map")
        return table[key]

    return run


class _ArgTransform(NamedTuple):
    check: Callable[[Any], bool]  # is the YAML argument usable
    wanted: str  # what the argument must be, for the problem line
    build: Callable[[Any], Transform]  # the transform for a checked argument


# Transforms written as a one-key mapping ``{name: argument}``; the checker validates the argument.
_WITH_ARG: dict[str, _ArgTransform] = {
    "strip_prefix": _ArgTransform(lambda a: isinstance(a, str) and a != "", "a non-empty text",
                                  _strip_prefix),
    "map": _ArgTransform(lambda a: isinstance(a, dict) and bool(a), "a non-empty mapping",
                         _value_map),
}


class FieldSpec(BaseModel):
    """Where one Identity field (or extra key) comes from."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    from_: str | list[str] | None = Field(default=None, alias="from")
    const: Any = None
    transform: list[str | dict[str, Any]] = Field(default_factory=list)
    required: bool = False

    @model_validator(mode="after")
    def _one_source(self) -> FieldSpec:
        if (self.from_ is None) == (self.const is None):
            raise ValueError("give exactly one of 'from' (attribute names) or 'const'")
        if isinstance(self.from_, list) and not self.from_:
            raise ValueError("'from' lists no attribute")
        return self

    @property
    def sources(self) -> tuple[str, ...]:
        if self.from_ is None:
            return ()
        return (self.from_,) if isinstance(self.from_, str) else tuple(self.from_)


class MappingFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int
    description: str | None = None
    fields: dict[str, str | FieldSpec]
    identifiers: dict[str, str | FieldSpec] = Field(default_factory=dict)
    extra: dict[str, str | FieldSpec] = Field(default_factory=dict)


@dataclass(frozen=True)
class _Compiled:
    """One field ready to run: its sources or constant and its transform chain."""

    name: str
    sources: tuple[str, ...]
    const: Any
    steps: tuple[tuple[str, Transform], ...]
    required: bool


@dataclass(frozen=True)
class ProviderMapping:
    provider: str
    source: str
    fields: tuple[_Compiled, ...]
    extra: tuple[_Compiled, ...]
    identifiers: tuple[_Compiled, ...] = ()


def _first_present(attributes: dict[str, Any], names: tuple[str, ...]) -> Any:
    """First non-empty value among ``names``; multi-valued (SAML) attributes give their first."""
    for name in names:
        value = attributes.get(name)
        if isinstance(value, list | tuple):
            value = next((v for v in value if v not in (None, "")), None)
        if isinstance(value, str) and not value.strip():
            value = None
        if value is not None:
            return value
    return None


class MappingSet:
    """Every provider's mapping, loaded from a folder of ``<provider>.yaml`` files."""

    def __init__(self, mappings: dict[str, ProviderMapping]):
        self._mappings = dict(mappings)

    @property
    def providers(self) -> tuple[str, ...]:
        return tuple(sorted(self._mappings))

    @classmethod
    def load(cls, directory: Path) -> MappingSet:
        """Load and validate every ``*.yaml`` in ``directory``.

        Raises ``PolicyError`` listing every problem as ``file:line: key.path: message``.
        """
        problems: list[str] = []
        mappings: dict[str, ProviderMapping] = {}
        directory = Path(directory)
        if not directory.is_dir():
            raise PolicyError([f"{directory}: mappings folder not found"])
        files = sorted(directory.glob("*.yaml"))
        if not files:
            raise PolicyError([f"{directory}: no mapping files (*.yaml)"])
        for path in files:
            try:
                doc = load(path)
            except YamlProblem as exc:
                problems.append(str(exc))
                continue
            mapping = _compile_file(path.stem, doc, problems)
            if mapping is not None:
                mappings[path.stem] = mapping
        if problems:
            raise PolicyError(problems)
        return cls(mappings)

    def map(self, event: AuthEvent) -> Identity:
        """The Identity for ``event``.

        Raises ``ProviderError`` (or ``InvalidFiscalCode``) when attributes are missing or bad.
        """
        mapping = self._mappings.get(event.provider)
        if mapping is None:
            raise PolicyError([f"no mapping file for provider {event.provider!r}"])
        values = {f.name: v for f in mapping.fields if (v := _run(event, f)) is not None}
        extra = {f.name: v for f in mapping.extra if (v := _run(event, f)) is not None}
        ids = {f.name: str(v) for f in mapping.identifiers if (v := _run(event, f)) is not None}
        if not ids and "fiscal_code" not in values:
            raise ProviderError(f"{event.provider}: neither a codice fiscale nor another "
                                "identifier", message=PROVIDER_CF_MESSAGE)
        try:
            return Identity(**values, identifiers=ids, extra=extra)
        except ValidationError as exc:
            fields = ", ".join(f"{'.'.join(map(str, e['loc']))} ({e['type']})"
                               for e in exc.errors(include_url=False))
            raise ProviderError(
                f"{event.provider}: attributes do not fit the identity: {fields}"
            ) from None


def _run(event: AuthEvent, spec: _Compiled) -> Any:
    value = spec.const if not spec.sources else _first_present(event.attributes, spec.sources)
    where = f"{event.provider}: {spec.name} (from {', '.join(spec.sources) or 'const'})"
    if value is None:
        if spec.required:
            if spec.name == "fiscal_code":
                raise ProviderError(f"{where}: missing", message=PROVIDER_CF_MESSAGE)
            raise ProviderError(f"{where}: required attribute missing")
        return None
    for step, fn in spec.steps:
        try:
            value = fn(value)
        except InvalidFiscalCode as exc:
            raise InvalidFiscalCode(f"{where}: {exc.detail}", message=PROVIDER_CF_MESSAGE) from None
        except TransformError as exc:
            raise ProviderError(f"{where}: transform {step}: {exc}") from None
    if spec.name == "fiscal_code" and isinstance(value, str):
        try:
            value = normalize_person(value)
        except InvalidFiscalCode as exc:
            raise InvalidFiscalCode(f"{where}: {exc.detail}", message=PROVIDER_CF_MESSAGE) from None
    return value


_IDENTITY_FIELDS = tuple(n for n in Identity.model_fields if n not in ("extra", "identifiers"))


def _compile_file(provider: str, doc: YamlDoc, problems: list[str]) -> ProviderMapping | None:
    data = doc.data
    if not isinstance(data, dict):
        problems.append(doc.problem((), "expected a mapping with 'version' and 'fields'"))
        return None
    try:
        parsed = MappingFile.model_validate(data)
    except ValidationError as exc:
        problems.extend(doc.pydantic_problems(exc))
        return None
    before = len(problems)
    if parsed.version not in SUPPORTED_VERSIONS:
        known = ", ".join(map(str, SUPPORTED_VERSIONS))
        problems.append(doc.problem(("version",), f"unsupported version {parsed.version} "
                                    f"(this broker reads {known})"))
    fields: list[_Compiled] = []
    for name, spec in parsed.fields.items():
        path = ("fields", name)
        if name not in _IDENTITY_FIELDS:
            problems.append(doc.problem(path, f"not an identity field (one of: "
                                        f"{', '.join(_IDENTITY_FIELDS)}; use 'extra' for others)"))
            continue
        compiled = _compile_spec(name, spec, doc, path, problems)
        if compiled is not None:
            if name == "fiscal_code" and not parsed.identifiers:
                compiled = _Compiled(compiled.name, compiled.sources, compiled.const,
                                     compiled.steps, True)
            fields.append(compiled)
    if "fiscal_code" not in parsed.fields and not parsed.identifiers:
        problems.append(doc.problem(("fields",), "fiscal_code must be mapped (or, for people "
                                    "without one, 'identifiers')"))
    identifiers = []
    for name, spec in parsed.identifiers.items():
        if not name.isidentifier() or not name.islower():
            problems.append(doc.problem(("identifiers", name), "a scheme is a lower-case "
                                        "word (it names the claim <scheme>_person_identifier)"))
        elif (c := _compile_spec(name, spec, doc, ("identifiers", name), problems)) is not None:
            identifiers.append(c)
    extra = [c for name, spec in parsed.extra.items()
             if (c := _compile_spec(name, spec, doc, ("extra", name), problems)) is not None]
    if len(problems) != before:
        return None
    return ProviderMapping(provider, doc.file, tuple(fields), tuple(extra), tuple(identifiers))


def _compile_spec(name: str, spec: str | FieldSpec, doc: YamlDoc, path: tuple[str, ...],
                  problems: list[str]) -> _Compiled | None:
    if isinstance(spec, str):
        return _Compiled(name, (spec,), None, (), False)
    steps: list[tuple[str, Transform]] = []
    ok = True
    for i, step in enumerate(spec.transform):
        where: tuple[str | int, ...] = (*path, "transform", i)
        if isinstance(step, str):
            if step in _SIMPLE:
                steps.append((step, _SIMPLE[step]))
            elif step in _WITH_ARG:
                problems.append(doc.problem(where, f"transform {step!r} needs an argument: "
                                            f"write {{{step}: ...}}"))
                ok = False
            else:
                problems.append(doc.problem(where, f"unknown transform {step!r} (known: "
                                            f"{', '.join([*_SIMPLE, *_WITH_ARG])})"))
                ok = False
            continue
        if len(step) != 1:
            problems.append(doc.problem(where, "a transform with an argument is a one-key mapping"))
            ok = False
            continue
        (key, arg), = step.items()
        if key not in _WITH_ARG:
            problems.append(doc.problem(where, f"unknown transform {key!r} (with an argument: "
                                        f"{', '.join(_WITH_ARG)})"))
            ok = False
            continue
        check, wanted, build = _WITH_ARG[key]
        if not check(arg):
            problems.append(doc.problem((*where, key), f"argument must be {wanted}"))
            ok = False
            continue
        steps.append((key, build(arg)))
    if not ok:
        return None
    return _Compiled(name, spec.sources, spec.const, tuple(steps), spec.required)


__all__ = ["FieldSpec", "MappingSet", "ProviderMapping"]
