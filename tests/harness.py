"""A real broker on a real uvicorn on 127.0.0.1, in a temp data folder, for the tests.

Tests talk to it over real HTTP with httpx (an OIDC client that is not the server's
code). The broker's clock is a ``FixedClock`` the test can move, so expiry and lockout
are tested without sleeping. Import from here (``from tests.harness import ...``), never
``from conftest``: several test folders have a conftest module of their own.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from broker.app import Broker, create_app
from broker.clock import FixedClock
from broker.config import DirectorySettings, Settings, load_settings
from broker.paths import project_dir
from tests import loopguard


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RunningBroker:
    """A broker serving on 127.0.0.1: its URL, its context and its movable clock."""

    url: str
    ctx: Broker  # the built parts (``app.state.broker``)
    clock: FixedClock
    server: uvicorn.Server
    thread: threading.Thread

    def client(self, **kw: Any) -> httpx.Client:
        """A fresh browser: its own cookie jar, no automatic redirects."""
        return httpx.Client(base_url=self.url, follow_redirects=False, timeout=30, **kw)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def demo_settings(data_dir: Path, **overrides: Any) -> Settings:
    """The demo config, but without the demo roles unless a test asks for them.

    With the demo directory on, the demo users also act as intermediaries, operators and
    delegates and get a role page after login; tests of other behaviour opt out of it.
    """
    settings = load_settings(project_dir("config") / "demo.yaml")
    overrides.setdefault("directory", DirectorySettings(demo=False))
    return settings.model_copy(update={"data_dir": data_dir, **overrides})


def start_broker(settings: Settings, clock: FixedClock | None = None,
                 port: int | None = None) -> RunningBroker:
    clock = clock or FixedClock(datetime.now(UTC))
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    app = create_app(settings, clock=clock, issuer=url)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                            access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True, name=loopguard.SERVER_THREAD)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("broker did not start")
        time.sleep(0.02)
    return RunningBroker(url, app.state.broker, clock, server, thread)
