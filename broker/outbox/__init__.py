"""The persistent outbox: messages written with the change that causes them, delivered later.

A state change (a PIN issued, a conversion approved) and the notices it causes are
written in one database transaction (``Outbox.enqueue`` takes the open connection), so
either both happen or neither. A worker thread then delivers each message through its
channel (SMTP email and PEC, an HTTP SMS gateway, a PDF letter in a print queue, or
files for the demo), retrying with exponential backoff on the injected clock; a channel
that is down loses nothing. Secrets a message carries (PIN halves, recovery codes) are
sealed (AES-GCM) and wiped once delivered; see ``broker.outbox.sealing``.
"""

from broker.outbox.config import ChannelConfig, OutboxConfig
from broker.outbox.model import Channel, NewMessage, OutboxRecord, Rendered, Status
from broker.outbox.sealing import Sealer
from broker.outbox.store import Outbox
from broker.outbox.worker import OutboxWorker, build_worker

__all__ = ["Channel", "ChannelConfig", "NewMessage", "Outbox", "OutboxConfig", "OutboxRecord",
           "OutboxWorker", "Rendered", "Sealer", "Status", "build_worker"]
