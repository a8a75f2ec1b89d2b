"""OBJECT IDLETIME counts from a key's last read too, as Redis' does (commands/objects.py):
a read is noted in the object cache of each replica it reaches; OBJECT itself is no read."""

from __future__ import annotations

import asyncio
from pathlib import Path

import hiredis

from tests.unit.test_client_connection import one_client
from tests.unit.test_no_multi import request

START = 1_800_000_000.0


def test_a_read_resets_the_idle_time_and_object_does_not(tmp_path: Path) -> None:
    async def run() -> list[object]:
        srv, conn, transport = one_client(tmp_path)
        clock = [START]
        srv.wall_clock = lambda: clock[0]
        steps = [(0, (b"SET", b"k", b"v")), (100, (b"OBJECT", b"IDLETIME", b"k")),
                 (100, (b"GET", b"k")), (103, (b"OBJECT", b"IDLETIME", b"k")),
                 (110, (b"OBJECT", b"IDLETIME", b"k")), (110, (b"SET", b"k", b"w")),
                 (115, (b"OBJECT", b"IDLETIME", b"k"))]
        for at, words in steps:
            clock[0] = START + at
            conn.data_received(request(*words))
            for _ in range(5):
                await asyncio.sleep(0)
        reader = hiredis.Reader()
        reader.feed(transport.sent)
        out = []
        while (reply := reader.gets()) is not False:
            out.append(reply)
        return out

    assert asyncio.run(run()) == [b"OK", 100, b"v", 3, 10, b"OK", 5]
