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


class Node:
    """A one-node server (durability none: no periodic sync would ever come) and a
    client of it whose BGSAVE's sync fails once."""

    def __init__(self, tmp_path: Path) -> None:
        self.srv = NodeServer(NodeOptions(port=1, data_dir=str(tmp_path), engine="lmdb",
                                          durability="none", n=1, r=1, w=1))
        self.srv.loop = asyncio.get_running_loop()
        self.conn = ClientConnection(self.srv)
        self.transport = FakeTransport()
        self.conn.connection_made(self.transport)  # type: ignore[arg-type]
        engine = self.srv.engine
        assert isinstance(engine, LmdbEngine)
        self.engine = engine
        self.env = engine._env

    async def call(self, *args: bytes) -> bytes:
        """One command's reply (a write's within a few loop turns)."""
        self.transport.sent = b""
        self.conn.data_received(request(*args))
        for _ in range(100):
            await asyncio.sleep(0)
            if self.transport.sent:
                break
        return self.transport.sent

    async def fail_a_bgsave(self) -> None:
        await self.call(b"PING")  # (the node settles: its membership saved)
        self.engine._env = FailingSyncs(self.env, failures=1)
        self.engine.put(0, b"k", b"v")  # (a commit the BGSAVE syncs)
        assert await self.call(b"BGSAVE") == b"+Background saving started\r\n"
        self.engine._join_syncer()
        info = await self.call(b"INFO", b"persistence")
        assert info_field(info, b"rdb_last_bgsave_status") == b"err"

    def close(self) -> None:
        self.engine._env = self.env
        self.srv.stopped = True
        self.engine.close()


def test_the_commit_timer_retries_a_failed_bgsave_without_a_new_write(
        tmp_path: Path) -> None:
    async def run() -> None:
        node = Node(tmp_path)
        try:
            await node.fail_a_bgsave()
            engine = node.engine
            syncs = engine.syncs
            engine.sync_backoff.retry_at = 0.0  # (its backoff has passed)
            node.srv._commit_timer()  # nothing staged, nothing written since
            engine._join_syncer()
            assert engine.syncs == syncs + 1
            info = await node.call(b"INFO", b"persistence")
            assert info_field(info, b"rdb_last_bgsave_status") == b"ok"
        finally:
            node.close()

    asyncio.run(run())


def test_a_failed_bgsave_stops_no_writes_and_config_says_so(tmp_path: Path) -> None:
    """Redis answers writes -MISCONF after a failed BGSAVE (stop-writes-on-bgsave-error
    yes, its default); a node here goes on taking them (compat/DIFFERENCES.md), and
    CONFIG GET stop-writes-on-bgsave-error says so in Redis' reply shape."""
    async def run() -> None:
        node = Node(tmp_path)
        try:
            await node.fail_a_bgsave()
            assert await node.call(b"SET", b"after", b"v") == b"+OK\r\n"
            assert await node.call(b"GET", b"after") == b"$1\r\nv\r\n"
            assert await node.call(b"CONFIG", b"GET", b"stop-writes-on-bgsave-error") == \
                b"*2\r\n$27\r\nstop-writes-on-bgsave-error\r\n$2\r\nno\r\n"
            assert await node.call(b"CONFIG", b"SET", b"stop-writes-on-bgsave-error",
                                   b"yes") == (b"-ERR Unknown option or number of arguments "
                                               b"for CONFIG SET - 'stop-writes-on-bgsave-"
                                               b"error'\r\n")
        finally:
            node.close()

    asyncio.run(run())
