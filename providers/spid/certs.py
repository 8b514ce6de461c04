"""The ``varco spid keygen`` command: a SPID SP key and certificate (``providers.saml.certs``).

Self-signed RSA (3072 bits by default, 2048 minimum), SHA-256, subject with
commonName, organizationName, organizationIdentifier (``PA:IT-<IPA>`` public,
``VATIT-<n>`` or ``CF:IT-<cf>`` private), uri (the entityID), countryName ``IT``,
localityName; keyUsage digitalSignature + nonRepudiation (critical), basicConstraints
CA false, certificatePolicies agIDroot/agIDcert plus the public or private SP policy.

Command line (what ``varco spid keygen`` wraps)::

    python -m providers.spid.certs --entity-id https://varco.example.it/spid/metadata \\
        --profile public --org-id PA:IT-inps --org-name "INPS" --common-name "Varco" \\
        --locality Roma --key-out var/spid/sp.key --cert-out var/spid/sp.crt

The broker also calls ``ensure_keys`` at start, which creates the pair in the data
folder when none exists (mode 0600 for the key).
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path

from providers.saml.certs import ensure_keys, make_certificate, write_pair

__all__ = ["ensure_keys", "main", "make_certificate", "write_pair"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m providers.spid.certs",
                                description="Generate a SPID-compliant SP key and certificate.")
    p.add_argument("--entity-id", required=True)
    p.add_argument("--profile", choices=["public", "private"], default="public")
    p.add_argument("--org-id", required=True,
                   help="PA:IT-<IPA code> | VATIT-<11 digits> | CF:IT-<codice fiscale>")
    p.add_argument("--org-name", required=True)
    p.add_argument("--common-name", required=True)
    p.add_argument("--locality", required=True)
    p.add_argument("--days", type=int, default=730)
    p.add_argument("--key-size", type=int, default=3072)
    p.add_argument("--key-out", type=Path, required=True)
    p.add_argument("--cert-out", type=Path, required=True)
    args = p.parse_args(argv)
    from datetime import UTC

    if args.key_out.exists():
        print(f"{args.key_out} exists: not overwriting", file=sys.stderr)
        return 2
    try:
        key, cert = make_certificate(
            entity_id=args.entity_id, profile=args.profile, org_id=args.org_id,
            org_name=args.org_name, common_name=args.common_name, locality=args.locality,
            now=datetime.now(UTC), days=args.days, key_size=args.key_size)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    write_pair(key, cert, args.key_out, args.cert_out)
    print(f"key: {args.key_out}\ncertificate: {args.cert_out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
