"""Typed settings of the outbox channels (a section of the PIN provider's config).

Each channel is either a real transport or a ``file`` folder (the embedded demo: emails
as ``.eml``, SMS as ``.json``, nothing to install). Letters are always PDF files in a
print-queue folder. Relative folders are inside the broker's data folder. Secrets (SMTP
password, gateway token) are named by environment variable, never written here.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ChannelConfig(_Strict):
    """One channel. ``kind``: ``smtp`` (email, PEC), ``http`` (SMS gateway), ``file`` (demo)."""

    kind: Literal["smtp", "http", "file"] = "file"
    # file
    folder: str | None = Field(None, description="file: folder for .eml/.json (data dir relative)")
    # smtp
    host: str | None = None
    port: int = Field(25, ge=1, le=65535)
    starttls: bool = Field(False, description="smtp: upgrade with STARTTLS (required outside "
                                              "localhost in production)")
    ssl: bool = Field(False, description="smtp: implicit TLS (port 465)")
    from_address: str = Field("noreply@varco.invalid", description="smtp/file: the From header")
    username: str | None = None
    password_env: str | None = Field(None, description="smtp: env var holding the password")
    # http
    url: str | None = Field(None, description="http: the gateway URL; a JSON POST "
                                              "{to, text, reference} per message")
    token_env: str | None = Field(None, description="http: env var with a bearer token")
    timeout: float = Field(10.0, gt=0, le=120)

    @model_validator(mode="after")
    def _complete(self) -> ChannelConfig:
        if self.kind == "smtp" and not self.host:
            raise ValueError("kind smtp needs host")
        if self.kind == "http" and not (self.url or "").startswith(("http://", "https://")):
            raise ValueError("kind http needs an http(s) url")
        if self.ssl and self.starttls:
            raise ValueError("choose ssl or starttls, not both")
        return self


class OutboxConfig(_Strict):
    """Where each channel goes and how delivery is retried."""

    email: ChannelConfig = ChannelConfig(folder="outbox/email")
    pec: ChannelConfig = ChannelConfig(folder="outbox/pec")
    sms: ChannelConfig = ChannelConfig(folder="outbox/sms")
    letter_folder: str = Field("outbox/letters", description="print queue of PDF letters")
    max_attempts: int = Field(10, ge=1, le=100, description="then the message is 'failed' "
                                                            "and the back office can retry it")
    retry_base_seconds: int = Field(30, ge=1, description="first retry delay; doubles each time")
    retry_max_seconds: int = Field(3600, ge=1, description="longest delay between two attempts")
    poll_seconds: float = Field(1.0, gt=0, le=60, description="how often the worker looks for "
                                                               "due messages (real time)")
    key_env: str = Field("VARCO_OUTBOX_KEY", description="env var with the 32-byte sealing key "
                                                         "(hex); else data_dir/outbox.key")
