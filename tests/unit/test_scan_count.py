"""HSCAN, SSCAN and ZSCAN walk at most scanning.MOST elements a call whatever COUNT asks
(COUNT is a hint): a COUNT of a billion over a million elements, MATCH or not, held a
node's loop ~0.7 s. A client walking to cursor 0 still gets every element once."""

from __future__ import annotations

import hiredis
import pytest

from dynredis.commands import scanning
from tests.collharness import LocalRunner

N = 500


def parse(data: bytes) -> object:
    r = hiredis.Reader()
    r.feed(data)
    return r.gets()


def _filled() -> LocalRunner:
    r = LocalRunner()
    r.run(b"SADD", b"s", *[b"m%d" % i for i in range(N)])
    r.run(b"HSET", b"h", *[w for i in range(N) for w in (b"m%d" % i, b"v%d" % i)])
    r.run(b"ZADD", b"z", *[w for i in range(N) for w in (b"%d" % i, b"m%d" % i)])
    return r


@pytest.mark.parametrize("command,key,step", [(b"SSCAN", b"s", 1), (b"HSCAN", b"h", 2),
                                              (b"ZSCAN", b"z", 2)])
def test_a_huge_count_walks_a_bounded_page_a_call_and_every_element_once(
        monkeypatch, command: bytes, key: bytes, step: int) -> None:
    monkeypatch.setattr(scanning, "MOST", 50)
    r = _filled()
    cursor, seen, calls = b"0", [], 0
    while True:
        got = parse(r.run(command, key, cursor, b"COUNT", b"1000000000"))
        assert isinstance(got, list)
        cursor, items = got
        assert len(items) <= 50 * step
        seen += items[::step]
        calls += 1
        if cursor == b"0":
            break
    assert calls >= N // 50 and sorted(seen) == sorted(b"m%d" % i for i in range(N))


def test_a_match_of_nothing_with_a_huge_count_answers_empty_pages(monkeypatch) -> None:
    monkeypatch.setattr(scanning, "MOST", 50)
    r = _filled()
    cursor, calls = b"0", 0
    while True:
        got = parse(r.run(b"SSCAN", b"s", cursor, b"MATCH", b"nomatch*", b"COUNT",
                          b"1000000000"))
        assert isinstance(got, list) and got[1] == []
        cursor = got[0]
        calls += 1
        if cursor == b"0":
            break
    assert calls >= N // 50
