"""GEO commands over a large sorted set: a search reads the score ranges of its area,
never the whole set, and ANY stops reading once it has enough."""

from __future__ import annotations

from typing import Any

import pytest

from dynredis.commands import geocmds
from tests.collharness import LocalRunner
from tests.unit.test_zranges import NoWalk


class Counted(NoWalk):
    """A SortedList that refuses to be walked whole and counts the members read."""

    read = 0

    def islice(self, start=None, stop=None, reverse=False):
        for item in super().islice(start, stop, reverse):
            Counted.read += 1
            yield item


@pytest.fixture(autouse=True)
def counted_segments(monkeypatch: pytest.MonkeyPatch) -> None:
    """The members a search reads in place (the C scan of the reader's segments: the
    SortedList's sublists between two positions) counted as those read by islice."""
    real = geocmds.sublists

    def counting(sl: Any, first: int, last: int) -> list[tuple[list[Any], int, int]]:
        out = real(sl, first, last)
        Counted.read += sum(stop - start for _, start, stop in out)
        return out

    monkeypatch.setattr(geocmds, "sublists", counting)


def world(r: LocalRunner, n_lon: int = 200, n_lat: int = 100) -> int:
    """n_lon x n_lat members on a grid over the whole map, plus a dense cluster of 500
    members within a few hundred meters of (15, 37)."""
    words = [b"GEOADD", b"world"]
    for i in range(n_lon):
        for j in range(n_lat):
            words += [b"%r" % (-179.9 + 359.8 * i / n_lon), b"%r" % (-84 + 168 * j / n_lat),
                      b"w%d:%d" % (i, j)]
    for k in range(500):
        words += [b"%r" % (15 + 0.0001 * (k % 25)), b"%r" % (37 + 0.0001 * (k // 25)),
                  b"c%d" % k]
    n = n_lon * n_lat + 500
    assert r.run(*words) == b":%d\r\n" % n
    state = r.store.states[b"world"]
    state.zorder = Counted(state.zorder)
    return n


def reads(r: LocalRunner, *args: bytes | str) -> tuple[bytes, int]:
    Counted.read = 0
    reply = r.run(*args)
    return reply, Counted.read


def test_searches_read_their_area_only():
    r = LocalRunner()
    n = world(r)
    reply, read = reads(r, "GEOSEARCH", "world", "FROMLONLAT", "15", "37", "BYRADIUS",
                        "1", "km", "COUNT", "3", "ASC")
    assert reply.startswith(b"*3\r\n$2\r\nc0\r\n")
    assert 500 <= read < 2000 < n  # the cluster and its neighbour cells, not the world
    reply, read = reads(r, "GEORADIUS", "world", "100", "40", "300", "km", "WITHDIST")
    assert reply.startswith(b"*") and reply != b"*0\r\n"
    assert read < n // 20
    reply, read = reads(r, "GEOSEARCHSTORE", "dst", "world", "FROMMEMBER", "w10:50",
                        "BYBOX", "500", "500", "km")
    assert reply != b":0\r\n" and read < n // 20
    assert r.run("ZCARD", "dst") == reply


def test_any_stops_reading_when_it_has_enough():
    r = LocalRunner()
    world(r)
    everything, read_all = reads(r, "GEOSEARCH", "world", "FROMLONLAT", "15", "37",
                                 "BYRADIUS", "5", "km")
    assert everything.startswith(b"*500\r\n")
    reply, read = reads(r, "GEOSEARCH", "world", "FROMLONLAT", "15", "37", "BYRADIUS", "5",
                        "km", "COUNT", "2", "ANY")
    assert reply.startswith(b"*2\r\n") and read < 10 < read_all


def test_point_reads_do_not_walk_the_set():
    r = LocalRunner()
    world(r)
    reply, read = reads(r, "GEOPOS", "world", "c0", "w0:0", "nope")
    assert reply.startswith(b"*3\r\n*2\r\n") and reply.endswith(b"*-1\r\n") and read == 0
    reply, read = reads(r, "GEODIST", "world", "c0", "c24", "m")
    assert reply.startswith(b"$") and read == 0
    reply, read = reads(r, "GEOHASH", "world", "c0")
    assert reply == b"*1\r\n$11\r\nsqddmrdst70\r\n" and read == 0  # redis-server: the same
