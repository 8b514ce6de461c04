"""The ``varco`` command: serve the broker, and the admins' tools (policy, audit)."""

from __future__ import annotations

import argparse
import gc
import logging
import sys
from pathlib import Path

from broker.errors import ConfigError, PolicyError
from broker.ops.logs import setup_logging
from broker.paths import project_dir


def _default_config() -> Path:
    return project_dir("config") / "demo.yaml"


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from broker.app import create_app
    from broker.config import load_settings

    settings = load_settings(args.config)
    issuer = settings.issuer or f"http://{_url_host(args.host)}:{args.port}"
    app = create_app(settings, issuer=issuer)
    print(f"Varco is serving {issuer} (config {args.config})", flush=True)
    # Everything built so far (templates, keys, policies, metadata) lives as long as the
    # process: freeze it out of the garbage collector's full passes (fewer long pauses).
    gc.collect()
    gc.freeze()
    # A request allocates thousands of short-lived containers (pydantic models, parsed
    # XML, dicts), nearly all freed by reference counting: with the default gen-0
    # threshold (700) the collector ran several times per login for nothing to find
    # (~0.5 ms of CPU per SPID login). Cycles are still collected, 70x less often.
    gc.set_threshold(50_000, 20, 100)
    if settings.demo_rp:
        print(f"Demo relying party: {issuer}/demo-rp/", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, access_log=False, log_config=None,
                proxy_headers=bool(settings.trusted_proxies),
                forwarded_allow_ips=",".join(settings.trusted_proxies) or None,
                timeout_graceful_shutdown=10)
    return 0


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", "::"):  # noqa: S104 - only to build a display URL
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from broker.audit import AuditLog
    from broker.clock import SystemClock
    from broker.config import load_settings
    from broker.store.factory import build_database

    settings = load_settings(args.config)
    db_path = settings.data_dir / "varco.db"
    if settings.store.durable == "sqlite" and not db_path.exists():
        print(f"no audit trail yet at {db_path}")
        return 1
    ok, summary = AuditLog(build_database(settings), SystemClock()).verify()
    print(summary)
    return 0 if ok else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="varco", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the broker")
    serve.add_argument("--config", type=Path, default=None,
                       help="settings file (default: the embedded demo config)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.set_defaults(func=cmd_serve)

    audit = sub.add_parser("audit", help="the audit trail")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    verify = audit_sub.add_parser("verify", help="check the hash chain of the audit trail")
    verify.add_argument("--config", type=Path, default=None)
    verify.set_defaults(func=cmd_audit_verify)

    from broker.cli import db as db_cli
    from broker.cli import keys as keys_cli
    from broker.cli import policy as policy_cli
    from providers.types import provider_types

    for tool in (policy_cli, keys_cli, db_cli):
        tool.register(sub)
    for kind in provider_types().values():  # each login method's own tools
        if kind.cli is not None:
            kind.cli(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    # A tool with an option parser of its own (``passes_rest``) gets what is left.
    args, rest = parser.parse_known_args(argv)
    if rest and not getattr(args, "passes_rest", False):
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    args.rest = rest
    if args.command == "serve":
        setup_logging(logging.INFO)
    if getattr(args, "config", "unset") is None:
        args.config = _default_config()
    try:
        return int(args.func(args) or 0)
    except (ConfigError, PolicyError) as exc:
        print(f"varco: cannot start:\n{exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
