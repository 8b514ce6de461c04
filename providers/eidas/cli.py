"""``varco eidas ...``: link an eIDAS person identifier to a codice fiscale, unlink, list.

The same operations as ``/admin/eidas/links``, for an operator at the server: the
operator and the reason are required and go to the audit trail with the change.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from broker.errors import BrokerError


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    from broker.audit import AuditLog
    from broker.clock import SystemClock
    from broker.config import load_settings
    from broker.store.factory import build_database
    from providers.eidas.links import LinkStore

    out = out or sys.stdout  # looked up now: a test may have replaced it
    settings = load_settings(args.config)
    clock = SystemClock()
    db = build_database(settings)
    links = LinkStore(db, AuditLog(db, clock))
    try:
        if args.eidas_command == "link":
            made = links.link(args.person_identifier, args.fiscal_code, operator=args.operator,
                              reason=args.reason, now=clock.now())
            print(json.dumps({"linked": made.person_identifier,
                              "fiscal_code": made.fiscal_code}), file=out)
        elif args.eidas_command == "unlink":
            was = links.unlink(args.person_identifier, operator=args.operator,
                               reason=args.reason)
            print(json.dumps({"unlinked": args.person_identifier, "fiscal_code": was}),
                  file=out)
        else:
            print(json.dumps([link.__dict__ for link in links.links(args.fiscal_code)],
                             indent=2), file=out)
    except BrokerError as exc:
        print(f"refused: {exc.message.en}", file=out)
        return 1
    return 0


def register(subparsers: Any) -> None:
    """Add ``varco eidas ...`` to the ``varco`` parser."""
    eidas = subparsers.add_parser("eidas", help="links between eIDAS identities and "
                                                "codici fiscali")
    sub = eidas.add_subparsers(dest="eidas_command", required=True)

    def command(name: str, help: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = sub.add_parser(name, help=help)
        p.add_argument("--config", type=Path, default=None,
                       help="settings file (default: the embedded demo config)")
        p.set_defaults(func=run)
        return p

    link = command("link", "link a person identifier (CC/IT/...) to a codice fiscale")
    unlink = command("unlink", "remove a link")
    for p in (link, unlink):
        p.add_argument("person_identifier")
        p.add_argument("--operator", required=True, help="who is acting (audit trail)")
        p.add_argument("--reason", required=True, help="why (audit trail)")
    link.add_argument("fiscal_code")
    listing = command("list", "list the links (of one codice fiscale)")
    listing.add_argument("--fiscal-code", default=None)
