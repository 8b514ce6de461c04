"""Real peers for the outbox channels: an aiosmtpd SMTP server and a small HTTP SMS gateway.

Both listen on 127.0.0.1 in the test process and keep what arrives, so a test reads the
email or SMS a citizen would get. The gateway can be told to fail (HTTP 503) to test
retries.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]  # (host, port)
        return port


class _Keep:
    def __init__(self, sink: SmtpSink):
        self.sink = sink

    async def handle_DATA(self, server, session, envelope):
        mail = message_from_bytes(envelope.content, policy=policy.default)
        with self.sink.lock:
            self.sink.messages.append(mail)
        return "250 OK"


@dataclass
class SmtpSink:
    """A real SMTP server (aiosmtpd) that keeps every message it accepts."""

    port: int = 0
    messages: list[EmailMessage] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    controller: Controller | None = None

    def start(self) -> SmtpSink:
        self.port = free_port()
        self.controller = Controller(_Keep(self), hostname="127.0.0.1", port=self.port)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def to(self, address: str) -> list[EmailMessage]:
        with self.lock:
            return [m for m in self.messages if m["To"] == address]

    def wait_for(self, address: str, count: int = 1, timeout: float = 10) -> list[EmailMessage]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.to(address)
            if len(found) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(f"no {count} message(s) for {address}: {len(self.to(address))}")

    def channel(self, **kw: Any) -> dict[str, Any]:
        """The outbox channel config that points at this sink."""
        return {"kind": "smtp", "host": "127.0.0.1", "port": self.port,
                "from_address": "pin@istituto.example", **kw}


def body(mail: EmailMessage) -> str:
    part = mail.get_body(("plain",))
    assert part is not None
    text: str = part.get_content()
    return text


class SmsGateway:
    """An HTTP SMS gateway: JSON POSTs kept in ``received``; ``failing`` makes it answer 503."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.failing = False
        self.refused = 0
        self.lock = threading.Lock()
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                data = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with gateway.lock:
                    if gateway.failing:
                        gateway.refused += 1
                        self.send_response(503)
                        self.end_headers()
                        return
                    gateway.received.append(json.loads(data))
                self.send_response(202)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"accepted": true}')

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/send"

    def start(self) -> SmsGateway:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def to(self, number: str) -> list[dict[str, Any]]:
        with self.lock:
            return [m for m in self.received if m["to"] == number]

    def wait_for(self, number: str, count: int = 1, timeout: float = 10) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.to(number)
            if len(found) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(f"no {count} SMS for {number}")

    def channel(self) -> dict[str, Any]:
        return {"kind": "http", "url": self.url}
