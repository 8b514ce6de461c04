"""``EphemeralStore`` on Redis (or Valkey): the scale-out home of short-lived, hot state.

Every operation of the interface is one Redis command, so it is atomic across any
number of broker processes and no caller does read-modify-write:

====================  ===========================================================
``put``               ``SET key value EX ttl``
``get``               ``GET key``
``take``              ``GETDEL key`` (single use: two processes never both win)
``add``               ``SET key value NX EX ttl`` (replay caches)
``delete``            ``DEL key``
``incr``              a two-line Lua script: ``INCR``, then ``EXPIRE`` only when the
                      counter was just created (so a window never slides)
``purge_expired``     nothing to do: Redis expires keys itself; returns 0
====================  ===========================================================

Keys are ``<prefix><ns>|<key>``: namespaces are code constants without ``|``, so the
first ``|`` splits a key unambiguously, and the prefix lets several brokers (or a
broker and something else) share one Redis.

Time to live is Redis's own clock, not the broker's injected clock: callers that need
exact expiry compare against the clock themselves (sessions and tokens carry their
expiry), and the TTL only bounds how long Redis keeps the value.

Redis being down is a ``ServiceUnavailable`` (503, a readable page), never a 500
with a stack trace on the citizen's screen.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

import redis

from broker.errors import ServiceUnavailable

log = logging.getLogger("varco.store.redis")
T = TypeVar("T")

# KEYS[1]: the counter; ARGV[1]: its TTL in seconds. Atomic on the server.
_INCR_LUA = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return n
"""


class RedisEphemeralStore:
    """``broker.store.base.EphemeralStore`` backed by one Redis database.

    ``client`` may be given (tests, shared pools); otherwise one is built from ``url``
    with a thread-safe connection pool sized for the thread pool FastAPI runs in.
    """

    def __init__(self, url: str | None = None, *, prefix: str = "varco:",
                 client: redis.Redis[str] | None = None, timeout: float = 5.0,
                 max_connections: int = 100):
        if client is None:
            if not url:
                raise ValueError("a Redis URL or client is needed")
            pool = redis.BlockingConnectionPool.from_url(
                url, decode_responses=True, socket_timeout=timeout,
                socket_connect_timeout=timeout, max_connections=max_connections,
                timeout=timeout, health_check_interval=30)
            # The pool decodes replies (``decode_responses``): the client gives str.
            client = cast("redis.Redis[str]", redis.Redis(connection_pool=pool))
        self.redis = client
        self.prefix = prefix
        self._incr = self.redis.register_script(_INCR_LUA)

    def __repr__(self) -> str:  # the URL may carry a password: never shown
        return f"RedisEphemeralStore(prefix={self.prefix!r})"

    def _k(self, ns: str, key: str) -> str:
        if "|" in ns:
            raise ValueError(f"namespace {ns!r} must not contain '|'")
        return f"{self.prefix}{ns}|{key}"

    @staticmethod
    def _ttl(ttl: int) -> int:
        ttl = int(ttl)
        if ttl < 1:
            raise ValueError("ttl must be at least one second")
        return ttl

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except redis.RedisError as exc:
            # No key names in the message: they may be token hashes or session ids.
            raise ServiceUnavailable(f"redis {what} failed: {type(exc).__name__}") from exc

    # --- EphemeralStore -----------------------------------------------------------
    def put(self, ns: str, key: str, value: str, ttl: int) -> None:
        k, t = self._k(ns, key), self._ttl(ttl)
        self._call("SET", lambda: self.redis.set(k, value, ex=t))

    def get(self, ns: str, key: str) -> str | None:
        k = self._k(ns, key)
        return self._call("GET", lambda: self.redis.get(k))

    def put_many(self, items: Sequence[tuple[str, str, str, int]]) -> None:
        def run() -> None:
            pipe = self.redis.pipeline(transaction=True)  # MULTI/EXEC: all or none
            for ns, key, value, ttl in items:
                pipe.set(self._k(ns, key), value, ex=self._ttl(ttl))
            pipe.execute()

        self._call("SET (pipeline)", run)

    def get_many(self, keys: Sequence[tuple[str, str]]) -> list[str | None]:
        names = [self._k(ns, key) for ns, key in keys]
        return self._call("MGET", lambda: self.redis.mget(names))

    def take(self, ns: str, key: str) -> str | None:
        k = self._k(ns, key)
        return self._call("GETDEL", lambda: self.redis.getdel(k))

    def add(self, ns: str, key: str, value: str, ttl: int) -> bool:
        k, t = self._k(ns, key), self._ttl(ttl)
        return bool(self._call("SET NX", lambda: self.redis.set(k, value, ex=t, nx=True)))

    def delete(self, ns: str, key: str) -> None:
        k = self._k(ns, key)
        self._call("DEL", lambda: self.redis.delete(k))

    def incr(self, ns: str, key: str, ttl: int) -> int:
        k, t = self._k(ns, key), self._ttl(ttl)
        return int(self._call("INCR", lambda: self._incr(keys=[k], args=[t])))

    def purge_expired(self) -> int:
        return 0  # Redis expires keys on its own

    # --- operations -----------------------------------------------------------------
    def ping(self) -> None:
        """Raise ``ServiceUnavailable`` when Redis does not answer (``/readyz``)."""
        self._call("PING", self.redis.ping)

    def close(self) -> None:
        self.redis.close()
        pool: Any = self.redis.connection_pool
        pool.disconnect()
