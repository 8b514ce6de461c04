"""The PIN provider's typed settings (``providers.pin`` in the broker config).

Every field has a default that follows the institute's rules (DOMAIN.md): ten consecutive
wrong PINs lock for five minutes, a PIN is valid six months. The argon2id cost follows the
OWASP password-storage minimum (m=19 MiB, t=2, p=1); raise it when the hardware allows,
old hashes are upgraded at the next successful login.
"""

from __future__ import annotations

from pydantic import Field

from broker.outbox.config import OutboxConfig
from providers.base import ProviderConfig


class PinConfig(ProviderConfig):
    """Settings of the ``pin`` provider; unknown keys are errors (``ProviderConfig``)."""

    max_failures: int = Field(
        10, ge=1, le=100,
        description="Consecutive wrong PINs (for one codice fiscale) that lock the login.")
    lockout_seconds: int = Field(
        300, ge=1, le=86400, description="How long the login stays locked after max_failures.")
    validity_days: int = Field(
        183, ge=1, le=3660,
        description="Days a PIN stays valid after issue or change (six months); "
                    "an expired PIN is refused with guidance to renew.")
    change_timeout: int = Field(
        600, ge=60, le=3600,
        description="Seconds the citizen has to choose the 8-character PIN after the "
                    "first login with the 16-character initial PIN.")
    time_cost: int = Field(2, ge=1, le=20, description="argon2id iterations.")
    memory_cost: int = Field(19456, ge=8192, le=1048576, description="argon2id memory in KiB.")
    parallelism: int = Field(1, ge=1, le=16, description="argon2id lanes.")
    renewal_url: str | None = Field(
        None, description="Where the expired-PIN page sends the citizen to request a new PIN "
                          "(the PIN request page of issue 6); None: the page explains the steps.")
    outbox: OutboxConfig = Field(
        OutboxConfig(), description="Channels for PIN halves and notices (SMTP email/PEC, HTTP "
                                    "SMS gateway, PDF letters). Default: files under "
                                    "data_dir/outbox (demo).")
    rate_limit_per_fiscal_code: int = Field(
        5, ge=1, le=1000, description="Requests, activations, recoveries and telephone-PIN "
                                      "checks per codice fiscale per window.")
    rate_limit_per_address: int = Field(
        30, ge=1, le=100000, description="The same, per client IP address per window.")
    rate_limit_window_seconds: int = Field(3600, ge=60, le=86400)
    recovery_code_ttl: int = Field(1800, ge=300, le=86400,
                                   description="Seconds a recovery code stays valid.")
    upload_max_bytes: int = Field(
        5 * 1024 * 1024, ge=10 * 1024, le=50 * 1024 * 1024,
        description="Largest MV35 form or identity document accepted (PDF, PNG, JPEG).")
    demo_users: bool = Field(
        False, description="Create the demo PIN users at start (idempotent). Never in production.")
