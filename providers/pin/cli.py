"""The PIN back office on the command line: ``varco pin history | conversions | approve | ...``.

The same operations as the ``/admin/pin`` API, run directly on the data folder's
database named by ``--config`` (an admin on the broker host). The operator is recorded
as ``cli:<--operator>`` with the ``--reason``, in the audit trail and the practice
history, exactly as the API records ``<admin client>:<operator>``. Messages these
commands cause go to the outbox; a running broker delivers them, or ``varco pin deliver``
runs one delivery pass now. Output is JSON, for people and scripts alike.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, TextIO

from broker.errors import BrokerError


@dataclass
class _Tools:
    lifecycle: Any
    worker: Any


def _open(config: Path) -> _Tools:
    from broker.audit import AuditLog
    from broker.clock import SystemClock
    from broker.config import load_settings
    from broker.outbox import Outbox, Sealer, build_worker
    from broker.store.factory import build_database
    from providers.pin.config import PinConfig
    from providers.pin.hashing import PinHasher
    from providers.pin.lifecycle import PinLifecycle
    from providers.pin.messages import TEMPLATES
    from providers.pin.store import PinStore

    settings = load_settings(config)
    pin = PinConfig.model_validate(settings.providers.get("pin") or {})
    clock = SystemClock()
    db = build_database(settings)
    store = PinStore(db, max_failures=pin.max_failures, lockout_seconds=pin.lockout_seconds)
    outbox = Outbox(db, Sealer.from_environment(settings.data_dir, pin.outbox.key_env))
    worker = build_worker(outbox, pin.outbox, settings.data_dir, clock, TEMPLATES)
    lifecycle = PinLifecycle(store, outbox, PinHasher.from_config(pin), clock,
                             AuditLog(db, clock), validity=timedelta(days=pin.validity_days),
                             kick=lambda: None)
    return _Tools(lifecycle, worker)


def _cf(value: str) -> str:
    from broker.fiscal_code import normalize_person

    return normalize_person(value)


def _print(data: Any, out: TextIO) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False, default=str), file=out)


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Run one ``varco pin`` command; 0 done, 1 refused (state or input), with a message."""
    from broker.outbox import Status
    from providers.pin import records
    from providers.pin.lifecycle import LifecycleError

    out = out or sys.stdout
    tools = _open(args.config)
    life = tools.lifecycle
    actor = f"cli:{getattr(args, 'operator', '')}"
    try:
        if args.pin_command == "history":
            _print(life.history(_cf(args.fiscal_code)), out)
        elif args.pin_command == "conversions":
            with life.db.transaction() as c:
                _print([v.public() for v in records.conversions(c, status=args.status)], out)
        elif args.pin_command in ("approve", "reject"):
            decided = life.decide_conversion(args.id, approve=args.pin_command == "approve",
                                             operator=actor, reason=args.reason)
            _print(decided.public(), out)
        elif args.pin_command == "revoke":
            channel = "telephone" if args.telephone else "web"
            if not life.revoke(_cf(args.fiscal_code), actor=actor, reason=args.reason,
                               channel=channel):
                print("nothing to revoke", file=out)
                return 1
            _print({"revoked": True, "channel": channel}, out)
        elif args.pin_command == "reissue":
            issued = life.reissue_letter(_cf(args.fiscal_code), None, actor=actor,
                                         reason=args.reason)
            _print({"practice_number": issued.practice_number}, out)
        elif args.pin_command == "outbox":
            found = life.outbox.list(status=Status(args.status) if args.status else None,
                                     fiscal_code=_cf(args.fiscal_code) if args.fiscal_code
                                     else None)
            _print({"counts": life.outbox.counts(), "messages": [m.public() for m in found]},
                   out)
        elif args.pin_command == "retry":
            with life.db.transaction():
                ok = life.outbox.retry(args.id, life.clock.now())
                if ok:
                    life.audit.record("pin.outbox.retry", message_id=args.id, operator=actor,
                                      reason=args.reason)
            if not ok:
                print("message unknown or already sent", file=out)
                return 1
            _print({"retrying": True}, out)
        elif args.pin_command == "deliver":
            _print({"delivered": tools.worker.run_once(limit=1000)}, out)
    except LifecycleError as exc:
        print(f"refused: {exc.code}", file=out)
        return 1
    except BrokerError as exc:
        print(f"refused: {exc.message.en}", file=out)
        return 1
    return 0


def register(subparsers: Any) -> None:
    """Add ``varco pin ...`` to the ``varco`` parser."""
    pin = subparsers.add_parser("pin", help="the PIN back office (conversions, revocations, "
                                            "letters, outbox)")
    sub = pin.add_subparsers(dest="pin_command", required=True)

    def command(name: str, help: str, *, operator: bool = False) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = sub.add_parser(name, help=help)
        p.add_argument("--config", type=Path, default=None,
                       help="settings file (default: the embedded demo config)")
        if operator:
            p.add_argument("--operator", required=True, help="who is acting (audit trail)")
            p.add_argument("--reason", required=True, help="why (audit trail)")
        p.set_defaults(func=run)
        return p

    command("history", "everything about one person's PINs").add_argument("fiscal_code")
    command("conversions", "conversion requests").add_argument(
        "--status", default="pending", choices=["pending", "approved", "rejected"])
    command("approve", "approve a conversion: the PIN becomes dispositivo",
            operator=True).add_argument("id", type=int)
    command("reject", "reject a conversion", operator=True).add_argument("id", type=int)
    revoke = command("revoke", "revoke a person's PIN", operator=True)
    revoke.add_argument("fiscal_code")
    revoke.add_argument("--telephone", action="store_true", help="the telephone PIN instead")
    command("reissue", "a new initial PIN and letter (letter not received)",
            operator=True).add_argument("fiscal_code")
    outbox = command("outbox", "outgoing messages and their delivery status")
    outbox.add_argument("--status", choices=["pending", "sent", "failed"])
    outbox.add_argument("--fiscal-code", dest="fiscal_code")
    command("retry", "retry a failed message now", operator=True).add_argument("id", type=int)
    command("deliver", "one delivery pass of the outbox now")
