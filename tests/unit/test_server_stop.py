"""A node's timers after it stopped: the tick, the commit timer and a flush can fire
while the event loop winds down (asyncio.run cancels what is left and runs due
callbacks), after `stop` closed the engine. They must do nothing then: they used to
walk the closed LMDB environment and log `tick failed` with a traceback at every
other stop of a node holding partitions to drop (seen in tests/netns)."""

from __future__ import annotations

import asyncio
import logging
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
