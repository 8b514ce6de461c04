"""Fixtures shared by the provider tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.providers.spid_env import SpidEnv, start_spid_env


@pytest.fixture
def spid(broker_factory, tmp_path: Path) -> Iterator[SpidEnv]:
    """A broker with SPID on and the pysaml2 test IdP in its own server (``spid_env``)."""
    env = start_spid_env(broker_factory, tmp_path)
    yield env
    env.stop()
