"""A node's timers after it stopped: the tick, the commit timer and a flush can fire
while the event loop winds down (asyncio.run cancels what is left and runs due
callbacks), after `stop` closed the engine. They must do nothing then: they used to
walk the closed LMDB environment and log `tick failed` with a traceback at every
other stop of a node holding partitions to drop (seen in tests/netns)."""

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path

import pytest

from dynredis.server.app import NodeOptions, NodeServer


def test_timers_firing_after_stop_leave_the_closed_engine_alone(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async def run() -> NodeServer:
        srv = NodeServer(NodeOptions(port=1, data_dir=str(tmp_path), engine="lmdb"))
        srv.loop = asyncio.get_running_loop()
        srv.set_now()
        srv.node.tick()
        await srv.stop()
        # what the loop runs of the node's when its timers come due after the stop
        # (and the Lua thread's last callback, which ends in a pump)
        srv._tick()
        srv._commit_timer()
        srv.flush()
        srv.pump()
        await asyncio.sleep(0.05)
        return srv

    with caplog.at_level(logging.DEBUG):
        asyncio.run(run())
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_a_lua_job_ending_after_the_loop_closed_is_dropped_quietly(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A job the Lua thread finishes after the node stopped and its loop closed (the
    library sync a node starts with, a script killed at shutdown) has nobody to hand its
    result to: it was logged as "a scripting job failed" (RuntimeError: Event loop is
    closed), which also made the test above fail now and then."""
    release = threading.Event()

    async def run() -> NodeServer:
        srv = NodeServer(NodeOptions(port=1, data_dir=str(tmp_path), engine="lmdb"))
        srv.loop = asyncio.get_running_loop()
        srv.set_now()

        def job(engine: object) -> int:
            release.wait(10)
            return 1

        srv.scripts.in_lua(job, lambda result: None)
        await srv.stop()
        return srv

    with caplog.at_level(logging.DEBUG):
        srv = asyncio.run(run())  # the loop is closed when this returns
        thread = srv.scripts.worker._thread
        assert thread is not None and thread.is_alive()  # (the job still runs)
        release.set()
        thread.join(10)  # the job ends, then the thread (stopped: no more jobs)
        assert not thread.is_alive()
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
