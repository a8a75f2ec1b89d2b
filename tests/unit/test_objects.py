"""OBJECT ENCODING / REFCOUNT's rules for strings (commands/objects.py) and MEMORY
DOCTOR's report (commands/memorystats.py): Redis 7.0's, case by case."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from dynredis.commands.memorystats import (
    DOCTOR_CLIENTS,
    DOCTOR_EMPTY,
    DOCTOR_FINE,
    DOCTOR_PEAK,
    doctor_report,
)
from dynredis.commands.objects import strict_int, string_encoding, string_refcount

from .test_client_connection import one_client


@pytest.mark.parametrize("text,value", [
    (b"0", 0), (b"123", 123), (b"-5", -5), (b"9223372036854775807", 2**63 - 1),
    (b"-9223372036854775808", -(2**63)), (b"-0", None), (b"007", None), (b"+1", None),
    (b" 1", None), (b"1 ", None), (b"", None), (b"-", None), (b"1.5", None),
    (b"9223372036854775808", None), (b"\xd9\xa1", None), (b"1e3", None),
])
def test_strict_int_is_redis_string2ll(text: bytes, value: int | None) -> None:
    assert strict_int(text) == value


@pytest.mark.parametrize("value,encoding,refcount", [
    (b"0", "int", 2147483647), (b"9999", "int", 2147483647), (b"10000", "int", 1),
    (b"-1", "int", 1), (b"-0", "embstr", 1), (b"", "embstr", 1), (b"x" * 44, "embstr", 1),
    (b"x" * 45, "raw", 1), (b"12345678901234567890123", "embstr", 1),
    (b"1" * 45, "raw", 1),
])
def test_string_encoding_and_refcount(value: bytes, encoding: str, refcount: int) -> None:
    assert string_encoding(value) == encoding
    assert string_refcount(value) == refcount


MB = 1024 * 1024


def _stats(total: int, peak: int, clients: int) -> dict[str, int]:
    return {"total.allocated": total, "peak.allocated": peak, "clients.normal": clients}


def test_memory_doctor_reports_as_redis() -> None:
    assert doctor_report(_stats(4 * MB, 4 * MB, 0), 1) == DOCTOR_EMPTY
    assert doctor_report(_stats(50 * MB, 60 * MB, 1000), 2) == DOCTOR_FINE
    peak = doctor_report(_stats(50 * MB, 80 * MB, 0), 0)
    assert DOCTOR_PEAK in peak and DOCTOR_CLIENTS not in peak and peak.startswith("Sam")
    both = doctor_report(_stats(50 * MB, 80 * MB, 3 * MB), 10)
    assert DOCTOR_PEAK in both and DOCTOR_CLIENTS in both


def test_a_large_string_is_described_from_its_shape(tmp_path: Path) -> None:
    """OBJECT of a large string answers from a read of its shape: the collection path
    (whose sync carried the whole value: 28 pipelined OBJECT ENCODING of a 100 MB string
    held a node 463 ms) is not taken; a small string or a collection still is."""

    async def main() -> None:
        srv, conn, transport = one_client(tmp_path)

        async def send(line: str) -> bytes:
            transport.sent = b""
            conn.data_received(line.encode() + b"\r\n")
            for _ in range(10_000):
                if not conn.waiting and transport.sent:
                    break
                await asyncio.sleep(0.001)
            return transport.sent

        try:
            assert await send(f"SET big {'z' * 100_000}") == b"+OK\r\n"
            assert await send("SET small 42") == b"+OK\r\n"
            assert await send("HSET h f v") == b":1\r\n"
            coll = srv.node.coll
            run = coll.run
            ran: list[bytes] = []

            def counted(key: bytes, *rest: Any) -> None:
                ran.append(key)
                run(key, *rest)

            coll.run = counted
            assert await send("OBJECT ENCODING big") == b"$3\r\nraw\r\n"
            assert await send("OBJECT REFCOUNT big") == b":1\r\n"
            assert await send("OBJECT IDLETIME big") == b":0\r\n"
            assert (await send("OBJECT FREQ big")).startswith(b"-ERR An LFU maxmemory")
            assert ran == []
            assert await send("OBJECT ENCODING small") == b"$3\r\nint\r\n"
            assert await send("OBJECT REFCOUNT small") == b":2147483647\r\n"
            assert await send("OBJECT ENCODING h") == b"$8\r\nlistpack\r\n"
            assert await send("OBJECT ENCODING nokey") == b"$-1\r\n"
            assert ran == [b"small", b"small", b"h", b"nokey"]
        finally:
            srv.scripts.stop()

    asyncio.run(main())
