"""Channel senders: SMTP (email, PEC), an HTTP SMS gateway, PDF letters, and demo files.

A sender gets one ``Rendered`` message and either returns (delivered) or raises
``DeliveryError`` with a short reason for the back office. Senders never log the
message body: it may hold a PIN half.
"""

from __future__ import annotations

import json
import os
import secrets
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Protocol

import httpx

from broker.outbox.config import ChannelConfig
from broker.outbox.model import Rendered


class DeliveryError(Exception):
    """The channel did not accept the message; the worker retries later."""


class Sender(Protocol):
    def send(self, message: Rendered) -> None: ...


def _email(message: Rendered, from_address: str) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = from_address
    mail["To"] = message.recipient
    mail["Subject"] = message.subject
    mail["Date"] = formatdate(localtime=False)
    mail["Message-ID"] = make_msgid(domain=from_address.rpartition("@")[2] or "varco.invalid")
    mail["X-Varco-Outbox-Id"] = str(message.id)
    mail.set_content(message.body)
    return mail


def _write_private(folder: Path, name: str, data: bytes) -> Path:
    """Write atomically (temp name, then rename) with mode 0600: half-written files never show."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    final = folder / name
    tmp = folder / f".{name}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, final)
    return final


class SmtpSender:
    """Email or PEC through an SMTP relay (PEC providers accept SMTP submission too)."""

    def __init__(self, config: ChannelConfig):
        self.config = config

    def send(self, message: Rendered) -> None:
        cfg = self.config
        mail = _email(message, cfg.from_address)
        try:
            if cfg.ssl:
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                    cfg.host or "", cfg.port, timeout=cfg.timeout,
                    context=ssl.create_default_context())
            else:
                smtp = smtplib.SMTP(cfg.host or "", cfg.port, timeout=cfg.timeout)
            with smtp:
                if cfg.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if cfg.username:
                    smtp.login(cfg.username, os.environ.get(cfg.password_env or "", ""))
                smtp.send_message(mail)
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(f"smtp {cfg.host}:{cfg.port}: {type(exc).__name__}") from exc


class HttpSmsSender:
    """SMS through a gateway that takes ``POST {to, text, reference}`` as JSON; 2xx = accepted."""

    def __init__(self, config: ChannelConfig):
        self.config = config

    def send(self, message: Rendered) -> None:
        cfg = self.config
        headers = {}
        token = os.environ.get(cfg.token_env or "", "") if cfg.token_env else ""
        if token:
            headers["Authorization"] = f"Bearer {token}"
        body = {"to": message.recipient, "text": message.body,
                "reference": f"varco-outbox-{message.id}"}
        try:
            response = httpx.post(cfg.url or "", json=body, headers=headers, timeout=cfg.timeout)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"sms gateway: {type(exc).__name__}") from exc
        if not 200 <= response.status_code < 300:
            raise DeliveryError(f"sms gateway answered {response.status_code}")


class FileSender:
    """The demo channel: each email as an ``.eml`` file, each SMS as a ``.json`` file."""

    def __init__(self, folder: Path, *, as_email: bool, from_address: str):
        self.folder = folder
        self.as_email = as_email
        self.from_address = from_address

    def send(self, message: Rendered) -> None:
        stem = f"{message.id:06d}-{secrets.token_hex(4)}"
        try:
            if self.as_email:
                data = bytes(_email(message, self.from_address))
                _write_private(self.folder, f"{stem}.eml", data)
            else:
                data = json.dumps({"to": message.recipient, "text": message.body,
                                   "reference": f"varco-outbox-{message.id}"},
                                  ensure_ascii=False, indent=2).encode()
                _write_private(self.folder, f"{stem}.json", data)
        except OSError as exc:
            raise DeliveryError(f"file channel: {exc.strerror}") from exc


class LetterSender:
    """The postal half: one PDF per letter in the print-queue folder (fpdf2)."""

    def __init__(self, folder: Path):
        self.folder = folder

    def send(self, message: Rendered) -> None:
        if message.letter is None:
            raise DeliveryError("letter message without letter content")
        from broker.outbox.letter import render_pdf

        pdf = render_pdf(message.letter)
        name = f"letter-{message.id:06d}-{secrets.token_hex(4)}.pdf"
        try:
            _write_private(self.folder, name, pdf)
        except OSError as exc:
            raise DeliveryError(f"print queue: {exc.strerror}") from exc


def sender_for(config: ChannelConfig, data_dir: Path, *, as_email: bool) -> Sender:
    """The sender a channel's config describes; file folders are data-dir relative."""
    if config.kind == "smtp":
        return SmtpSender(config)
    if config.kind == "http":
        return HttpSmsSender(config)
    folder = Path(data_dir) / (config.folder or "outbox")
    return FileSender(folder, as_email=as_email, from_address=config.from_address)
