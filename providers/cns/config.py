"""The CNS provider's typed settings (``providers.cns`` in the broker config).

Relative paths are relative to the settings file's folder. Nothing here is secret: the
CA bundle, intermediates and CRLs are public documents.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from pydantic import Field, field_validator

from providers.base import ProviderConfig


class CnsConfig(ProviderConfig):
    """Settings of the ``cns`` provider; unknown keys are errors (``ProviderConfig``)."""

    tls_url: str = Field(
        description="Absolute https URL of the card endpoint: the nginx server block that "
                    "asks for the client certificate and proxies to the broker's /cns/tls "
                    "(e.g. https://cns.example.it/cns/tls). start() sends the browser there.")
    trusted_proxies: tuple[str, ...] = Field(
        min_length=1,
        description="IP addresses or CIDR blocks of the nginx instances allowed to hand the "
                    "broker a client certificate header. Anything else is refused.")
    ca_bundle: Path = Field(
        description="PEM file of the trusted CNS certification authorities (trust anchors).")
    intermediates: Path | None = Field(
        None, description="PEM file of intermediate CAs used to build chains (not trusted "
                          "by themselves); nginx passes only the card's own certificate.")
    crls: tuple[Path, ...] = Field(
        (), description="CRL files (PEM or DER) or folders of them; re-read when they change "
                        "on disk, so a cron job refreshing them needs no restart.")
    revocation: str = Field(
        "require", pattern="^(require|best_effort)$",
        description="require: refuse a certificate whose revocation status is unknown (no "
                    "current CRL from its issuer and no good OCSP answer); best_effort: "
                    "refuse only certificates known to be revoked.")
    ocsp: bool = Field(
        False, description="Ask the OCSP responder named in the certificate (AIA), if any.")
    ocsp_timeout: float = Field(5.0, gt=0, le=30, description="Seconds per OCSP request.")
    challenge_ttl: int = Field(
        180, ge=30, le=900,
        description="Seconds the one-time login challenge stays valid: the time to insert "
                    "the card and type its PIN.")
    max_chain_depth: int = Field(4, ge=1, le=8)

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            ipaddress.ip_network(item, strict=False)  # ValueError -> a config problem
        return value

    @field_validator("tls_url")
    @classmethod
    def _https(cls, value: str) -> str:
        if not value.startswith("https://"):
            raise ValueError("must be an https URL (the card handshake is TLS)")
        return value
