"""Fixtures for the operations tests: a real redis-server when one is needed."""

from __future__ import annotations

from tests.store.conftest import redis_server

__all__ = ["redis_server"]
