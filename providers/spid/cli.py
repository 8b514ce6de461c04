"""``varco spid ...``: the SPID service provider's tools."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    """Add ``varco spid keygen`` (its own option parser: ``varco spid keygen --help``)."""
    spid = subparsers.add_parser("spid", help="SPID service provider tools")
    sub = spid.add_subparsers(dest="spid_command", required=True)
    keygen = sub.add_parser(
        "keygen", add_help=False,
        help="generate a SPID-compliant SP key and certificate (varco spid keygen --help)")
    keygen.set_defaults(func=_keygen, passes_rest=True)


def _keygen(args: argparse.Namespace) -> int:
    from providers.spid.certs import main

    return main(list(args.rest))
