"""Shared fixtures: brokers started by ``tests.harness``, stopped after each test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from broker.clock import FixedClock
from tests import loopguard
from tests.harness import RunningBroker, demo_settings, start_broker


@pytest.fixture(autouse=True)
def no_blocking_call_on_the_event_loop() -> Iterator[None]:
    """Every test is also a check that no store, LDAP or argon2 call ran on the event loop
    of a broker it started (``tests.loopguard``); torn down last, after the brokers stop."""
    loopguard.install()
    seen = len(loopguard.VIOLATIONS)
    yield
    found = loopguard.VIOLATIONS[seen:]
    assert not found, f"{len(found)} blocking call(s) on the event loop; the first:\n{found[0]}"


@pytest.fixture
def broker_factory(tmp_path: Path) -> Iterator[Callable[..., RunningBroker]]:
    """Start brokers with the demo config (overridable); all stopped at the end."""
    started: list[RunningBroker] = []

    def make(clock: FixedClock | None = None, **overrides: Any) -> RunningBroker:
        data_dir = overrides.pop("data_dir", tmp_path / f"data{len(started)}")
        running = start_broker(demo_settings(data_dir, **overrides), clock)
        started.append(running)
        return running

    yield make
    for running in started:
        running.stop()


@pytest.fixture
def broker(broker_factory: Callable[..., RunningBroker]) -> RunningBroker:
    """A demo broker (demo RP, demo PIN users) on a fresh data folder."""
    return broker_factory()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """spid-sp-test's and cie-sp-test's own summaries, shown even when every test passed."""
    from tests.conformance.summary import LINES

    if LINES:
        terminalreporter.section("SPID / CIE conformance suites")
        for line in LINES:
            terminalreporter.write_line(line)
