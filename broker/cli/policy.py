"""The security admin's policy tools: ``varco policy check | explain | test``.

Each command is a function returning the exit code (0 good, 1 problems), so tests call
them directly; ``register`` wires them into the ``varco`` argument parser. They run the
very same loader and engine as the server.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, TextIO

from broker.clock import SystemClock
from broker.errors import BrokerError, PolicyError
from broker.model import Identity
from broker.policy.conditions import ROME
from broker.policy.engine import PolicyEngine
from broker.policy.explain import format_evaluation
from broker.policy.inputs import acr_for, make_input
from broker.policy.loader import load_rules
from broker.policy.testing import load_tests, run_tests
from broker.yamlfile import YamlProblem, loads

_IDENTITY_ATTRS = {n for n in Identity.model_fields if n not in ("fiscal_code", "extra")}


def _print_problems(problems: list[str] | tuple[str, ...], out: TextIO) -> None:
    for problem in problems:
        print(problem, file=out)


def check(dir: Path, mappings_dir: Path | None = None, *, out: TextIO | None = None) -> int:
    """Validate the policies, their tests and (if given) the mappings; print every error."""
    out = out or sys.stdout
    directory = Path(dir)
    rules, problems = load_rules(directory)
    tests_dir = directory / "tests"
    n_tests = 0
    if tests_dir.is_dir():
        tests, test_problems = load_tests(tests_dir, {r.id for r in rules} if not problems
                                          else None)
        problems += test_problems
        n_tests = len(tests)
    n_mappings = 0
    if mappings_dir is not None:
        from broker.mapping import MappingSet

        try:
            n_mappings = len(MappingSet.load(Path(mappings_dir)).providers)
        except PolicyError as exc:
            problems += exc.problems
    if problems:
        _print_problems(problems, out)
        print(f"{len(problems)} problem(s) found; nothing was changed.", file=out)
        return 1
    summary = f"OK: {len(rules)} rules in {directory}, {n_tests} tests"
    if mappings_dir is not None:
        summary += f", {n_mappings} mappings in {mappings_dir}"
    print(summary, file=out)
    return 0


def _value(text: str) -> Any:
    """A ``--attr`` value read as YAML scalars are (true, 12, 2021-10-01), else as text."""
    try:
        value = loads(text, "--attr").data
    except YamlProblem:
        return text
    return value if isinstance(value, str | int | float | bool | date) else text


def parse_attributes(pairs: list[str] | dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Split ``k=v`` pairs into event attributes, identity fields, client fields and facts.

    ``identity.X``/``event.X``/``client.X``/``facts.a.b`` go where they say; a plain key is
    an event attribute and, when it names an identity field (residence, italian_document,
    ...), that field too, as the mapping would make it.
    """
    out: dict[str, dict[str, Any]] = {"event": {}, "identity": {}, "client": {}, "facts": {}}
    items = pairs.items() if isinstance(pairs, dict) else []
    if isinstance(pairs, list):
        parsed = []
        for pair in pairs:
            key, sep, raw = pair.partition("=")
            if not sep or not key.strip():
                raise ValueError(f"--attr {pair!r}: expected key=value")
            parsed.append((key.strip(), _value(raw)))
        items = parsed
    for key, value in items:
        root, dot, rest = key.partition(".")
        if dot and root in ("event", "identity", "client"):
            if root == "client" and rest == "tags" and isinstance(value, str):
                value = [t.strip() for t in value.split(",") if t.strip()]
            out[root]["client_id" if (root, rest) == ("client", "id") else rest] = value
        elif dot and root == "facts":
            node = out["facts"]
            *parents, leaf = rest.split(".")
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = value
        else:
            out["event"][key] = value
            if key in _IDENTITY_ATTRS:
                out["identity"][key] = value
    return out


def _moment(now: datetime | date | str | None) -> datetime:
    if now is None:
        return SystemClock().now()
    if isinstance(now, str):
        now = datetime.fromisoformat(now) if "T" in now or " " in now else date.fromisoformat(now)
    if isinstance(now, datetime):
        return now if now.tzinfo else now.replace(tzinfo=ROME)
    return datetime.combine(now, time(12), ROME)


def directory_facts(config: Path | None, fiscal_code: str) -> tuple[dict[str, Any], str]:
    """Directory facts for ``explain`` from the broker's configured directory, and a note.

    The embedded directory is read from ``--config``'s data folder (the same SQLite file
    the server uses); an LDAP directory is asked with the configured read-only account.
    """
    if config is None:
        return {}, "no --config: no directory facts"
    from broker.clock import SystemClock
    from broker.config import load_settings
    from broker.fiscal_code import normalize_person

    settings = load_settings(config)
    if settings.directory.backend == "embedded" and settings.store.durable == "sqlite":
        db_path = settings.data_dir / "varco.db"
        if not db_path.exists():
            return {}, f"no embedded directory yet at {db_path}: no directory facts"
    from broker.directory.factory import build_directory
    from broker.store.factory import build_database

    db = build_database(settings) if settings.directory.backend == "embedded" else None
    directory = build_directory(settings.model_copy(update={
        "demo_seed": False, "directory": settings.directory.model_copy(
            update={"demo": False})}), db, SystemClock())
    facts = directory.facts(normalize_person(fiscal_code)).as_policy_facts()
    return facts, f"directory facts from the {directory.name} directory ({config})"


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def explain(dir: Path, fiscal_code: str, provider: str, level: str | int | None = None,
            client: str | None = None, attributes: list[str] | dict[str, Any] | None = None,
            *, now: datetime | date | str | None = None, out: TextIO | None = None,
            config: Path | None = None) -> int:
    """Print every rule, whether it fired and why, and the decision for the given login.

    With ``config``, the person's directory facts (deleghe, operator grants,
    delegations) come from that broker's directory; ``--attr facts.x=...`` adds to them.
    """
    out = out or sys.stdout
    try:
        engine = PolicyEngine.load(Path(dir))
    except PolicyError as exc:
        _print_problems(exc.problems, out)
        return 1
    try:
        parts = parse_attributes(attributes)
        rp = parts["client"]
        if client:
            rp["client_id"] = client
            rp.setdefault("required_privilege", _registered_privilege(config, client))
        facts, note = directory_facts(config, fiscal_code)
        inp = make_input(provider=provider, now=_moment(now), fiscal_code=fiscal_code,
                         acr=acr_for(provider, level), attributes=parts["event"],
                         identity=parts["identity"], client=rp,
                         facts=_merge(facts, parts["facts"]))
    except BrokerError as exc:
        print(f"error: {exc.detail}", file=out)
        return 1
    except ValueError as exc:  # includes pydantic's ValidationError
        print(f"error: {exc}", file=out)
        return 1
    print(f"({note})", file=out)
    out.write(format_evaluation(inp, engine.evaluate(inp)))
    return 0


def _registered_privilege(config: Path | None, client_id: str) -> str | None:
    """The client's registered required_privilege, read from ``config``'s registry."""
    if config is None:
        return None
    import yaml

    from broker.config import load_settings

    settings = load_settings(config)
    raw = yaml.safe_load(Path(settings.clients).read_text(encoding="utf-8")) or {}
    for item in raw.get("clients", []):
        if isinstance(item, dict) and item.get("client_id") == client_id:
            return item.get("required_privilege")
    return None


def test(dir: Path, *, out: TextIO | None = None, verbose: bool = False) -> int:
    """Run the YAML policy tests in ``dir/tests``; print failures and a pass/fail summary."""
    out = out or sys.stdout
    try:
        report = run_tests(Path(dir))
    except PolicyError as exc:
        _print_problems(exc.problems, out)
        print("policies do not load; no test was run", file=out)
        return 1
    _print_problems(report.problems, out)
    for result in report.results:
        if result.passed:
            if verbose:
                print(f"PASS {result.source}: {result.name}", file=out)
            continue
        print(f"FAIL {result.source}: {result.name}", file=out)
        for failure in result.failures:
            print(f"     {failure}", file=out)
    passed = sum(r.passed for r in report.results)
    failed = len(report.results) - passed
    print(f"{'PASS' if report.passed else 'FAIL'}: {passed} passed, {failed} failed"
          + (f", {len(report.problems)} problem(s)" if report.problems else ""), file=out)
    return 0 if report.passed else 1


# --- argparse wiring -------------------------------------------------------------------

def _default(name: str) -> Path | None:
    try:
        from broker.paths import project_dir

        return project_dir(name)
    except (ImportError, FileNotFoundError):
        return None


def _dir_or_fail(value: Path | None) -> Path:
    if value is None:
        raise SystemExit("varco policy: cannot find the policies folder; give DIR")
    return value


def _cmd_check(args: argparse.Namespace) -> int:
    return check(_dir_or_fail(args.dir), args.mappings)


def _cmd_explain(args: argparse.Namespace) -> int:
    return explain(_dir_or_fail(args.dir), args.fiscal_code, args.provider, args.level,
                   args.client, args.attr or [], now=args.now, config=args.config)


def _cmd_test(args: argparse.Namespace) -> int:
    return test(_dir_or_fail(args.dir), verbose=args.verbose)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``policy check|explain|test`` to the ``varco`` command."""
    policies = _default("policies")
    policy = subparsers.add_parser("policy", help="check, explain and test the policy files")
    sub = policy.add_subparsers(dest="policy_command", required=True)

    p = sub.add_parser("check", help="validate every policy, test and mapping file")
    p.add_argument("dir", nargs="?", type=Path, default=policies, metavar="DIR",
                   help="policy folder (default: the project's policies/)")
    p.add_argument("--mappings", type=Path, default=_default("mappings"), metavar="DIR",
                   help="mappings folder to validate too (default: the project's mappings/)")
    p.set_defaults(func=_cmd_check)

    p = sub.add_parser("explain", help="show which rules fire for a login, and why")
    p.add_argument("--dir", type=Path, default=policies, help="policy folder")
    p.add_argument("--fiscal-code", required=True, help="codice fiscale of the person")
    p.add_argument("--provider", required=True, help="pin, spid, cie or cns")
    p.add_argument("--level", default=None, help="1, 2, 3 or an acr URI (default per provider)")
    p.add_argument("--client", default=None, help="client id of the RP (default demo-rp)")
    p.add_argument("--attr", action="append", metavar="KEY=VALUE",
                   help="event attribute (pin_privilege=dispositivo), identity field "
                        "(residence=abroad), client.tags=a,b, client.required_privilege=..., "
                        "facts.x.y=...; repeatable")
    p.add_argument("--now", default=None, help="decide as of this date or ISO timestamp")
    p.add_argument("--config", type=Path, default=None,
                   help="broker settings whose directory gives the person's facts "
                        "(default: the demo config)")
    p.set_defaults(func=_cmd_explain)

    p = sub.add_parser("test", help="run the policy tests in DIR/tests")
    p.add_argument("dir", nargs="?", type=Path, default=policies, metavar="DIR",
                   help="policy folder (default: the project's policies/)")
    p.add_argument("-v", "--verbose", action="store_true", help="list passing tests too")
    p.set_defaults(func=_cmd_test)
