"""The value objects of the outbox: a message to enqueue, a stored record, a rendered message."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class Channel(StrEnum):
    """How a message travels. ``letter`` is the postal half: a PDF in the print queue."""

    EMAIL = "email"
    PEC = "pec"
    SMS = "sms"
    LETTER = "letter"


class Status(StrEnum):
    """``pending``: waiting or retrying; ``sent``: delivered; ``failed``: gave up (see error)."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


@dataclass(frozen=True)
class NewMessage:
    """A message to enqueue.

    ``params`` are stored in clear (names, practice number, address block): nothing
    secret. ``secrets`` (a PIN half, a recovery code) are sealed with the outbox key and
    only opened, in memory, by the worker at delivery.
    """

    channel: Channel
    recipient: str
    template: str
    params: dict[str, Any] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    fiscal_code: str | None = None
    reference: str | None = None


@dataclass(frozen=True)
class OutboxRecord:
    """One stored message as the back office sees it (never its secrets)."""

    id: int
    channel: Channel
    recipient: str
    template: str
    fiscal_code: str | None
    reference: str | None
    status: Status
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None
    sealed: bool

    def public(self) -> dict[str, Any]:
        """JSON for the admin API and the CLI; the recipient is shown masked."""
        return {
            "id": self.id, "channel": self.channel.value, "recipient": mask_recipient(
                self.channel, self.recipient), "template": self.template,
            "reference": self.reference, "status": self.status.value,
            "attempts": self.attempts, "next_attempt_at": self.next_attempt_at.isoformat(),
            "last_error": self.last_error, "created_at": self.created_at.isoformat(),
            "sent_at": self.sent_at.isoformat() if self.sent_at else None,
            "secret_held": self.sealed,
        }


@dataclass(frozen=True)
class Letter:
    """What a postal letter shows: the address block and the paragraphs of its text."""

    address_lines: tuple[str, ...]
    reference: str
    paragraphs: tuple[str, ...]
    highlight: str | None = None  # printed large (the 8 characters of the PIN half)


@dataclass(frozen=True)
class Rendered:
    """A message ready for a channel. Lives only in memory, during one delivery attempt."""

    id: int
    channel: Channel
    recipient: str
    subject: str
    body: str
    letter: Letter | None = None


def mask_recipient(channel: Channel, recipient: str) -> str:
    """Enough to recognise a recipient in the back office, not enough to harvest it."""
    if channel is Channel.LETTER:
        return recipient.split("\n", 1)[0][:1] + "***"
    if "@" in recipient:
        local, _, domain = recipient.partition("@")
        return f"{local[:1]}***@{domain}"
    return f"{recipient[:3]}***{recipient[-2:]}" if len(recipient) > 5 else "***"
