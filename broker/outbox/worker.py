"""The delivery worker: a background thread that sends due messages and schedules retries.

It never runs on the event loop (SMTP and HTTP calls block). ``kick()`` wakes it at once
after a new message is committed, so the demo and the tests do not wait for the poll;
``poll_seconds`` (real time) is only how often it looks when nobody kicks. Due times,
backoff and leases use the injected clock. ``stop()`` ends the thread cleanly (the PIN
provider calls it at shutdown).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from broker.clock import Clock
from broker.outbox.channels import DeliveryError, LetterSender, Sender, sender_for
from broker.outbox.config import OutboxConfig
from broker.outbox.model import Channel, Rendered, Status
from broker.outbox.sealing import SealError
from broker.outbox.store import Outbox

log = logging.getLogger("varco.outbox")

# A template renders (record id, channel, recipient, params, opened secrets) -> Rendered.
Template = Callable[[int, Channel, str, dict[str, Any], dict[str, str]], Rendered]


class OutboxWorker:
    """Delivers outbox messages through their channel senders, with retries."""

    def __init__(self, outbox: Outbox, senders: Mapping[Channel, Sender],
                 templates: Mapping[str, Template], clock: Clock, config: OutboxConfig):
        self.outbox = outbox
        self.senders = dict(senders)
        self.templates = dict(templates)
        self.clock = clock
        self.config = config
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._run_lock = threading.Lock()

    # -- one pass -------------------------------------------------------------------

    def run_once(self, limit: int = 20) -> int:
        """Try every due message once; returns how many were delivered."""
        with self._run_lock:
            delivered = 0
            for message_id in self.outbox.claim_due(self.clock.now(), limit):
                if self._deliver(message_id):
                    delivered += 1
            return delivered

    def _deliver(self, message_id: int) -> bool:
        cfg = self.config
        try:
            record, params, secrets = self.outbox.load(message_id)
            template = self.templates.get(record.template)
            sender = self.senders.get(record.channel)
            if template is None or sender is None:
                raise DeliveryError(f"no template {record.template!r} or channel "
                                    f"{record.channel.value!r}")
            sender.send(template(record.id, record.channel, record.recipient, params, secrets))
        except (DeliveryError, SealError) as exc:
            status = self.outbox.mark_failed(message_id, self.clock.now(), str(exc),
                                             max_attempts=cfg.max_attempts,
                                             base=cfg.retry_base_seconds,
                                             cap=cfg.retry_max_seconds)
            log.warning("outbox message %d not delivered (%s)%s", message_id, exc,
                        ", giving up" if status is Status.FAILED else ", will retry")
            return False
        except Exception:  # a bug in a template or sender must not kill the worker
            log.exception("outbox message %d: unexpected error", message_id)
            self.outbox.mark_failed(message_id, self.clock.now(), "internal error",
                                    max_attempts=cfg.max_attempts, base=cfg.retry_base_seconds,
                                    cap=cfg.retry_max_seconds)
            return False
        self.outbox.mark_sent(message_id, self.clock.now())
        log.info("outbox message %d delivered by %s", message_id, record.channel.value)
        return True

    # -- the thread ------------------------------------------------------------------

    def kick(self) -> None:
        """Something was enqueued: look now instead of at the next poll."""
        self._wake.set()

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="varco-outbox", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:
                log.exception("outbox worker pass failed")
            self._wake.wait(self.config.poll_seconds)
            self._wake.clear()


def build_worker(outbox: Outbox, config: OutboxConfig, data_dir: Path, clock: Clock,
                 templates: Mapping[str, Template]) -> OutboxWorker:
    """The worker with the senders ``config`` describes (file channels under ``data_dir``)."""
    senders: dict[Channel, Sender] = {
        Channel.EMAIL: sender_for(config.email, data_dir, as_email=True),
        Channel.PEC: sender_for(config.pec, data_dir, as_email=True),
        Channel.SMS: sender_for(config.sms, data_dir, as_email=False),
        Channel.LETTER: LetterSender(Path(data_dir) / config.letter_folder),
    }
    return OutboxWorker(outbox, senders, templates, clock, config)
