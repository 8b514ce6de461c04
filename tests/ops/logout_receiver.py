"""A relying party's logout endpoints on 127.0.0.1: a real HTTP server that records posts."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs


@dataclass
class Received:
    path: str
    content_type: str
    form: dict[str, list[str]]


@dataclass
class LogoutReceiver:
    """Answers each POST with the next status of ``statuses`` (then 200), keeps them all."""

    statuses: list[int] = field(default_factory=list)
    posts: list[Received] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def base(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> LogoutReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length).decode()
                receiver.posts.append(Received(self.path, self.headers.get("content-type", ""),
                                               parse_qs(body)))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def wait_for(self, count: int, timeout: float = 10) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.posts) < count:
            assert time.monotonic() < deadline, f"{len(self.posts)} posts, wanted {count}"
            time.sleep(0.05)
        return self.posts

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
