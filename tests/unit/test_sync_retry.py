"""A failed sync to disk is tried again (storage/syncretry.py): after a backoff, by the
node's commit timer, though nothing new is written; INFO persistence says
rdb_last_bgsave_status:err until a sync succeeds, as Redis does after a failed BGSAVE."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from dynredis.server.app import NodeOptions, NodeServer
from dynredis.server.client import ClientConnection
from dynredis.storage.lmdb_engine import LmdbEngine
from dynredis.storage.syncretry import FIRST_RETRY_S, MOST_RETRY_S
from tests.unit.test_client_connection import FakeTransport
from tests.unit.test_no_multi import request


class FailingSyncs:
    """An LMDB environment whose next `failures` syncs fail (a full or failing disk)."""

    def __init__(self, env: Any, failures: int) -> None:
        self.env = env
        self.failures = failures
        self.syncs = 0

    def sync(self, force: bool = False) -> None:
        self.syncs += 1
        if self.failures:
            self.failures -= 1
            raise OSError(5, "Input/output error")
        self.env.sync(force)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.env, name)


def failed_sync(engine: LmdbEngine) -> float:
    """Commit and sync in the background; the monotonic time just before it ended."""
    before = time.monotonic()
    engine.commit(True, wait=False)
    engine._join_syncer()
    return before


def test_a_failed_sync_is_due_again_after_a_growing_bounded_backoff(tmp_path: Path) -> None:
    engine = LmdbEngine(str(tmp_path / "db"))
    env = engine._env
    flaky = FailingSyncs(env, failures=10)
    engine._env = flaky
    try:
        engine.put(0, b"k", b"v")
        at = failed_sync(engine)
        assert engine.sync_failures == 1 and engine.last_sync_failed()
        assert not engine.sync_retry_due(at)
        assert engine.sync_retry_due(at + 2 * FIRST_RETRY_S)
        waits = []
        for _ in range(8):  # each failure in a row doubles the wait, up to MOST_RETRY_S
            at = failed_sync(engine)
            wait = engine.sync_backoff.retry_at - at
            waits.append(wait)
            assert not engine.sync_retry_due(at + wait / 2)
        assert waits[1] > 1.9 * waits[0] and waits[-1] <= MOST_RETRY_S + 1
        flaky.failures = 0
        failed_sync(engine)  # (this one succeeds)
        assert not engine.last_sync_failed()
        assert not engine.sync_retry_due(time.monotonic() + 10 * MOST_RETRY_S)
    finally:
        engine._env = env
        engine.close()


def info_field(sent: bytes, name: bytes) -> bytes:
    line = next(x for x in sent.split(b"\r\n") if x.startswith(name + b":"))
    return line.split(b":", 1)[1]


def test_the_commit_timer_retries_a_failed_bgsave_without_a_new_write(
        tmp_path: Path) -> None:
    async def run() -> None:
        # durability none: no periodic sync would ever come
        srv = NodeServer(NodeOptions(port=1, data_dir=str(tmp_path), engine="lmdb",
                                     durability="none", n=1, r=1, w=1))
        srv.loop = asyncio.get_running_loop()
        conn = ClientConnection(srv)
        transport = FakeTransport()
        conn.connection_made(transport)  # type: ignore[arg-type]
        conn.data_received(request(b"PING"))  # (the node settles: its membership saved)
        await asyncio.sleep(0)
        transport.sent = b""
        engine = srv.engine
        assert isinstance(engine, LmdbEngine)
        env = engine._env
        engine._env = FailingSyncs(env, failures=1)
        try:
            engine.put(0, b"k", b"v")  # (a commit the BGSAVE syncs)
            conn.data_received(request(b"BGSAVE"))
            await asyncio.sleep(0)
            engine._join_syncer()
            assert transport.sent == b"+Background saving started\r\n"
            transport.sent = b""
            conn.data_received(request(b"INFO", b"persistence"))
            await asyncio.sleep(0)
            assert info_field(transport.sent, b"rdb_last_bgsave_status") == b"err"
            syncs = engine.syncs
            engine.sync_backoff.retry_at = 0.0  # (its backoff has passed)
            srv._commit_timer()  # nothing staged, nothing written since
            engine._join_syncer()
            assert engine.syncs == syncs + 1
            transport.sent = b""
            conn.data_received(request(b"INFO", b"persistence"))
            await asyncio.sleep(0)
            assert info_field(transport.sent, b"rdb_last_bgsave_status") == b"ok"
        finally:
            engine._env = env
            srv.stopped = True
            engine.close()

    asyncio.run(run())
