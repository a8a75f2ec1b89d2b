"""INFO's sections: which ones a request gets (as Redis 7 gives them), and what many INFOs
in one request cost the node."""

from __future__ import annotations

import asyncio
from pathlib import Path

import hiredis
import pytest

from dynredis.commands import info

from .test_client_connection import one_client


@pytest.mark.parametrize("args, sections", [
    # each once, in Redis' order, whatever order and repetitions they come in
    ("cpu server cpu", ["server", "cpu"]),
    ("dynamo " * 140, ["dynamo"]),
    ("commandstats server bogus", ["server", "commandstats"]),
    ("bogus", []),
    # `default` (or nothing) with others: their union; `all` / `everything`: every one
    ("", list(info.DEFAULT_SECTIONS)),
    ("default commandstats", [s for s in info.ALL_SECTIONS if s != "latencystats"]),
    ("Everything", list(info.ALL_SECTIONS)),
    ("all cpu", list(info.ALL_SECTIONS)),
])
def test_the_sections_asked_for_come_once_each_in_redis_order(args: str, sections: list[str]
                                                             ) -> None:
    words = [b"INFO"] + [w.encode() for w in args.split()]
    assert info.wanted_sections(words) == sections


def replies(data: bytes) -> list[object]:
    reader = hiredis.Reader()
    reader.feed(data)
    out = []
    while (reply := reader.gets()) is not False:
        out.append(reply)
    return out


def test_infos_answered_on_one_keyspace_count_compute_each_section_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """INFOs with the keyspace section wait for one count of the keyspace (keyscan
    shares a count in flight) and were all answered in one callback, outside any
    client's turn budget: each computed its sections, so 58 `INFO everything` in 986
    bytes held a node's loop 70-140 ms (and `INFO dynamo dynamo ...` computed the section
    once per repetition). Now each section is computed once per count (it was 21 times
    here), and every INFO still gets its whole reply."""
    computed: list[str] = []
    counts: list[object] = []  # the keyspace counts the INFOs were answered on
    start = info._SharedReplies.start
    monkeypatch.setattr(info._SharedReplies, "start",
                        lambda self, result: counts.append(result) or start(self, result))
    for name in ("dynamo", "stats"):
        section = info.SECTIONS[name]
        monkeypatch.setitem(info.SECTIONS, name, lambda f, n, v, name=name, section=section:
                            computed.append(name) or section(f, n, v))

    async def run() -> bytes:
        _, conn, transport = one_client(tmp_path)
        conn.data_received(b"SET k v\r\n" + b"INFO everything\r\n" * 20
                           + b"INFO stats keyspace\r\n" + b"INFO " + b"dynamo " * 100
                           + b"keyspace\r\n")
        for _ in range(50):
            await asyncio.sleep(0)
            if len(replies(transport.sent)) == 23:
                break
        return transport.sent

    out = replies(asyncio.run(run()))
    assert len(out) == 23 and out[0] == b"OK"
    for reply in out[1:21]:
        text = reply.decode()  # type: ignore[union-attr]
        assert "# Dynamo" in text and "db0:keys=1," in text and "# Commandstats" in text
    assert "# Stats" in out[21].decode() and "# Dynamo" not in out[21].decode()  # type: ignore[union-attr]
    assert out[22].decode().count("# Dynamo") == 1  # type: ignore[union-attr]
    # (the client's window of commands waiting for replies splits the 22 INFOs into a
    # few groups, each answered on its own count)
    assert 1 <= len(counts) <= 4
    assert computed.count("dynamo") <= len(counts) and computed.count("stats") <= len(counts)
