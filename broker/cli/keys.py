"""``varco keys``: list and roll over the broker's signing keys (see ``broker.oidc.keys``).

``varco keys rotate`` writes one new key per algorithm into the data folder's ``keys``
folder, dated ``--delay`` seconds ahead (default twice the JWKS cache lifetime): every
broker process publishes it within seconds and starts signing with it only when that
time comes, so RPs that cached the JWKS already know it. ``varco keys list`` shows each
key's state; ``varco keys prune`` deletes the files of retired keys.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime
from pathlib import Path

from broker.oidc.backchannel import LOGOUT_TOKEN_LIFETIME
from broker.oidc.keys import (
    ROTATION_DELAY,
    SUPPORTED_ALGS,
    KeyState,
    KeyStatus,
    SigningKey,
    add_key,
    key_states,
    read_folder,
)


def retire_after_of(config: Path) -> tuple[Path, int]:
    """The keys folder and the retirement delay the broker running ``config`` uses."""
    from broker.config import load_settings

    settings = load_settings(config)
    tok = settings.tokens
    return (settings.data_dir / "keys",
            max(tok.id_token_lifetime, LOGOUT_TOKEN_LIFETIME) + tok.clock_skew)


def rotate(folder: Path, now: float, delay: int = ROTATION_DELAY,
           algs: tuple[str, ...] = SUPPORTED_ALGS) -> list[SigningKey]:
    """Add one key per alg that signs from ``now + delay``; refuse when one is pending."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    pending = {s.key.alg for s in key_states(read_folder(folder), now, 0)
               if s.state is KeyState.PENDING}
    clash = sorted(pending & set(algs))
    if clash:
        raise ValueError(f"a key is already waiting to sign for {', '.join(clash)}: "
                         "wait until it signs, or remove its file")
    return [add_key(folder, alg, int(now) + delay) for alg in algs]


def listing(folder: Path, now: float, retire_after: int) -> list[KeyStatus]:
    return key_states(read_folder(folder), now, retire_after)


def prune(folder: Path, now: float, retire_after: int) -> list[Path]:
    """Delete the files of retired keys; returns them."""
    gone = []
    for status in listing(folder, now, retire_after):
        if status.state is KeyState.RETIRED:
            path = folder / f"{status.key.alg}-{status.key.created}.pem"
            path.unlink()
            gone.append(path)
    return gone


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def cmd_list(args: argparse.Namespace) -> int:
    folder, retire_after = retire_after_of(args.config)
    if not folder.exists():
        print(f"no keys yet in {folder}")
        return 1
    print(f"{'alg':6} {'state':9} {'signs from':25} {'retires at':25} kid")
    for s in listing(folder, time.time(), retire_after):
        print(f"{s.key.alg:6} {s.state.value:9} {_when(s.key.created):25} "
              f"{_when(s.retires_at):25} {s.key.kid}")
    return 0


def cmd_rotate(args: argparse.Namespace) -> int:
    folder, _ = retire_after_of(args.config)
    if args.delay < 0:
        print("varco keys rotate: --delay cannot be negative")
        return 1
    try:
        keys = rotate(folder, time.time(), args.delay, tuple(args.alg or SUPPORTED_ALGS))
    except (ValueError, FileExistsError) as exc:
        print(f"varco keys rotate: {exc}")
        return 1
    for key in keys:
        print(f"{key.alg} {key.kid}: published now, signs from {_when(key.created)}")
    return 0


def cmd_prune(args: argparse.Namespace) -> int:
    folder, retire_after = retire_after_of(args.config)
    for path in prune(folder, time.time(), retire_after):
        print(f"removed {path.name}")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = sub.add_parser("keys", help="signing keys: list, rotate, prune")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    lst = keys_sub.add_parser("list", help="every key with its state and dates")
    lst.add_argument("--config", type=Path, default=None)
    lst.set_defaults(func=cmd_list)
    rot = keys_sub.add_parser("rotate", help="add a new key per algorithm, signing later")
    rot.add_argument("--config", type=Path, default=None)
    rot.add_argument("--delay", type=int, default=ROTATION_DELAY,
                     help=f"seconds between publication and first signature "
                          f"(default {ROTATION_DELAY}: twice the JWKS cache lifetime)")
    rot.add_argument("--alg", action="append", choices=SUPPORTED_ALGS,
                     help="only this algorithm (repeatable; default: all)")
    rot.set_defaults(func=cmd_rotate)
    prn = keys_sub.add_parser("prune", help="delete the files of retired keys")
    prn.add_argument("--config", type=Path, default=None)
    prn.set_defaults(func=cmd_prune)
