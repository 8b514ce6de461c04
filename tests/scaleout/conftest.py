"""Fixtures for the scale-out tests: a real redis-server shared by the broker processes."""

from __future__ import annotations

from tests.store.conftest import redis_server

__all__ = ["redis_server"]
