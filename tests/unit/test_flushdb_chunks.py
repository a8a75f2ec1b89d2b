"""FLUSHDB deletes the listed keys FLUSH_CHUNK at a time, and turns each chunk's keys
into stored keys only as that chunk starts (all at once held a node's loop 222 ms for a
million keys)."""

from __future__ import annotations

from typing import Any

import pytest

from dynredis.commands import keys as keys_mod
from dynredis.commands import server
from dynredis.commands.databases import storage_key


class _Slot:
    def __init__(self) -> None:
        self.reply: bytes | None = None

    def set(self, reply: bytes) -> None:
        self.reply = reply


class _KeyScan:
    def __init__(self, listed: list[bytes]) -> None:
        self.listed = listed

    def keys(self, match: Any, view: bool, cb: Any, db: int) -> None:
        cb((None, list(self.listed)))


class _Context:
    def __init__(self, listed: list[bytes], db: int) -> None:
        self.db = db
        self.cluster_view = False
        self.keyscan = _KeyScan(listed)
        self.slot = _Slot()

    def defer(self) -> _Slot:
        return self.slot


def test_flushdb_converts_and_deletes_one_chunk_at_a_time(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server, "FLUSH_CHUNK", 100)
    listed = [b"k%d" % i for i in range(250)]
    converted: list[bytes] = []
    chunks: list[tuple[int, list[bytes]]] = []  # (conversions done before it, its keys)
    pending: list[Any] = []

    def counting_storage_key(db: int, key: bytes) -> bytes:
        converted.append(key)
        return storage_key(db, key)

    def delete_keys(c: Any, part: list[bytes], then: Any) -> None:
        chunks.append((len(converted), part))
        pending.append(then)

    monkeypatch.setattr(server, "storage_key", counting_storage_key)
    monkeypatch.setattr(keys_mod, "_delete_keys", delete_keys)
    c = _Context(listed, db=3)
    assert server.cmd_flushdb(c, [b"FLUSHDB"]) is None  # type: ignore[arg-type]
    while pending:
        pending.pop().set(b":1\r\n")
    assert c.slot.reply == b"+OK\r\n"
    assert [len(part) for _, part in chunks] == [100, 100, 50]
    assert [done for done, _ in chunks] == [100, 200, 250]
    assert [k for _, part in chunks for k in part] == [storage_key(3, k) for k in listed]


def test_flushdb_stops_at_a_failed_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server, "FLUSH_CHUNK", 10)
    chunks: list[list[bytes]] = []

    def delete_keys(c: Any, part: list[bytes], then: Any) -> None:
        chunks.append(part)
        then.set(b"-NOQUORUM not enough replicas\r\n")

    monkeypatch.setattr(keys_mod, "_delete_keys", delete_keys)
    c = _Context([b"k%d" % i for i in range(35)], db=0)
    server.cmd_flushdb(c, [b"FLUSHDB"])  # type: ignore[arg-type]
    assert c.slot.reply == b"-NOQUORUM not enough replicas\r\n"
    assert len(chunks) == 1
