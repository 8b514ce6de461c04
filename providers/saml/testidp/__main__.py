"""Run the test IdP alone: ``python -m providers.saml.testidp --port 8081 --sp-metadata URL``.

``--write-metadata FILE`` writes the IdP's metadata where the broker's SPID registry
reads it (e.g. ``var/demo/spid-idps/test-idp.xml``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import httpx
import uvicorn

from providers.saml.testidp.app import create_app


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m providers.saml.testidp")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8081)
    p.add_argument("--sp-metadata", required=True, help="URL or file of the SP metadata")
    p.add_argument("--data", type=Path, default=Path("var/testidp"), help="key folder")
    p.add_argument("--write-metadata", type=Path, help="write the IdP metadata to this file")
    p.add_argument("--profile", choices=("spid", "cie", "eidas"), default="spid",
                   help="whom it plays: a SPID IdP, CIE ID, or FICEP (eIDAS)")
    args = p.parse_args(argv)
    base = f"http://{args.host}:{args.port}"

    def sp_metadata() -> bytes:
        src = args.sp_metadata
        if src.startswith(("http://", "https://")):
            return httpx.get(src, timeout=10).content
        return Path(src).read_bytes()

    app = create_app(base_url=base, data_dir=args.data, sp_metadata=sp_metadata,
                     profile=args.profile)
    if args.write_metadata:
        args.write_metadata.parent.mkdir(parents=True, exist_ok=True)
        args.write_metadata.write_text(app.state.idp.metadata_xml())
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
