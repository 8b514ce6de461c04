"""The event-loop guard itself: it must catch a blocking call, and only on the loop."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime
from pathlib import Path

from broker.clock import FixedClock
from broker.http.threads import in_thread
from broker.store.sqlite import SqliteDatabase, SqliteEphemeralStore
from tests import loopguard


def test_a_store_call_on_the_event_loop_is_recorded_and_one_in_a_worker_is_not(
        tmp_path: Path) -> None:
    loopguard.install()
    clock = FixedClock(datetime(2026, 12, 1, tzinfo=UTC))
    store = SqliteEphemeralStore(SqliteDatabase(tmp_path / "varco.db"), clock)
    seen = len(loopguard.VIOLATIONS)

    async def blocking() -> None:
        store.put("ns", "k", "v", 60)  # on the loop: what the guard exists to find

    async def proper() -> str | None:
        return await in_thread(store.get, "ns", "k")

    on_a_broker_loop = threading.Thread(target=asyncio.run, args=(blocking(),),
                                        name=loopguard.SERVER_THREAD)
    on_a_broker_loop.start()
    on_a_broker_loop.join()
    asyncio.run(blocking())  # a loop of another thread (a test's own): not a broker's
    found = loopguard.VIOLATIONS[seen:]
    assert len(found) == 2  # the put, and the SQLite write it makes
    assert "SqliteEphemeralStore.put called on the event loop" in found[0]
    assert "blocking" in found[0]  # the stack names the coroutine that did it
    del loopguard.VIOLATIONS[seen:]  # expected here: not this test's failure
    assert asyncio.run(proper()) == "v"
    assert loopguard.VIOLATIONS[seen:] == []
