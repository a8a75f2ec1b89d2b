"""What HyperLogLogs and bitmaps do with concurrent versions (the README's semantics
table): HLL versions written concurrently through different nodes are merged register
by register, so no element is lost; bitmap versions resolve last-writer-wins.

Concurrent versions are made as the README's tour makes them: two writes through
different nodes with the same context (two clients that saw the same version)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from .conftest import HOST, SOCKET_TIMEOUT_S, Cluster

pytestmark = pytest.mark.timeout(120)

ERR_NOT_HLL = "WRONGTYPE Key is not a valid HyperLogLog string value."


@pytest.fixture(scope="module")
def dyn(cluster: Cluster) -> Iterator[list[redis.Redis]]:
    cs = [cluster.client(i, decode_responses=False) for i in range(cluster.nodes)]
    yield cs
    for c in cs:
        c.close()


@pytest.fixture(scope="module")
def rr(real_redis: redis.Redis) -> Iterator[redis.Redis]:
    c = redis.Redis(host=HOST, port=real_redis.port,  # type: ignore[attr-defined]
                    socket_timeout=SOCKET_TIMEOUT_S)
    yield c
    c.close()


def hll_of(c: redis.Redis, name: str, elements: list[bytes]) -> bytes:
    """The bytes of an HLL holding `elements` (built in a scratch key)."""
    c.delete(name)
    for i in range(0, len(elements), 1000):
        c.pfadd(name, *elements[i:i + 1000])
    value = c.get(name)
    assert value is not None
    return value


def siblings(c: redis.Redis, key: str) -> list[bytes]:
    ctx_and_values = c.execute_command("GETCTX", key)
    return list(ctx_and_values[1])


def concurrent(dyn: list[redis.Redis], key: str, first: bytes | None,
               second: bytes | None) -> None:
    """Two versions of `key` written through nodes 1 and 2 with the context node 0
    read: concurrent siblings (None writes a causal delete)."""
    ctx = dyn[0].execute_command("GETCTX", key)[0]
    for node, value in ((1, first), (2, second)):
        if value is None:
            assert dyn[node].execute_command("DELCTX", key, ctx) == b"OK"
        else:
            assert dyn[node].execute_command("SETCTX", key, ctx, value) == b"OK"


def elements(prefix: str, n: int) -> list[bytes]:
    return [f"{prefix}:{i}".encode() for i in range(n)]


@pytest.mark.parametrize("sizes", [(100, 150), (3000, 40)], ids=["sparse+sparse",
                                                                   "dense+sparse"])
def test_concurrent_pfadds_all_count_and_the_next_pfadd_joins_them(
        dyn: list[redis.Redis], rr: redis.Redis, sizes: tuple[int, int]) -> None:
    key = f"hll:{sizes[0]}"
    a, b = elements("a", sizes[0]), elements("b", sizes[1])
    dyn[0].pfadd(key, b"seed")
    concurrent(dyn, key, hll_of(dyn[0], "scratch:a", [b"seed", *a]),
               hll_of(dyn[0], "scratch:b", [b"seed", *b]))
    assert len(siblings(dyn[0], key)) == 2

    # Every node counts both versions: the count of the union, as redis-server counts it.
    union = [b"seed", *a, *b]
    hll_of(rr, "ref", union)
    want = rr.pfcount("ref")
    assert abs(want - len(union)) <= len(union) * 0.02
    assert [c.pfcount(key) for c in dyn] == [want] * 3
    assert len(siblings(dyn[0], key)) == 2  # counting does not write the merge

    # PFADD writes the merged HLL over both versions: one sibling, nothing lost.
    assert dyn[1].pfadd(key, b"late") == 1
    assert len(siblings(dyn[2], key)) == 1
    merged = dyn[2].get(key)
    assert merged == hll_of(rr, "ref", [*union, b"late"])  # Redis' own bytes
    assert dyn[0].pfcount(key) == rr.pfcount("ref")


def test_pfmerge_joins_the_destination_versions_and_the_sources(
        dyn: list[redis.Redis], rr: redis.Redis) -> None:
    dyn[0].pfadd("hll:dest", b"d")  # superseded by both concurrent versions
    concurrent(dyn, "hll:dest", hll_of(dyn[0], "scratch:a", elements("x", 50)),
               hll_of(dyn[0], "scratch:b", elements("y", 70)))
    dyn[0].pfadd("hll:src", *elements("z", 30))
    assert dyn[0].pfmerge("hll:dest", "hll:src") is True
    assert len(siblings(dyn[1], "hll:dest")) == 1
    hll_of(rr, "ref", [*elements("x", 50), *elements("y", 70), *elements("z", 30)])
    assert dyn[1].pfcount("hll:dest") == rr.pfcount("ref")
    rr.set("copy", dyn[2].get("hll:dest"))
    assert rr.pfcount("copy") == rr.pfcount("ref")


def test_an_hll_written_concurrently_with_a_delete_survives_it(
        dyn: list[redis.Redis]) -> None:
    dyn[0].pfadd("hll:del", b"old")
    concurrent(dyn, "hll:del", hll_of(dyn[0], "scratch:a", [b"old", b"new"]), None)
    # The delete is the newest version: a plain GET sees nothing, but the concurrent
    # PFADD's elements are still counted and the next PFADD keeps them.
    assert dyn[0].get("hll:del") is None
    assert dyn[1].pfcount("hll:del") == 2
    assert dyn[2].pfadd("hll:del", b"newer") == 1
    assert dyn[0].pfcount("hll:del") == 3 and len(siblings(dyn[0], "hll:del")) == 1


def test_a_newer_plain_string_makes_the_key_a_string(dyn: list[redis.Redis]) -> None:
    dyn[0].pfadd("hll:str", b"a")
    concurrent(dyn, "hll:str", hll_of(dyn[0], "scratch:a", [b"a", b"b"]), b"just text")
    with pytest.raises(redis.ResponseError, match=ERR_NOT_HLL):
        dyn[0].pfadd("hll:str", b"c")
    with pytest.raises(redis.ResponseError, match=ERR_NOT_HLL):
        dyn[1].pfcount("hll:str")
    assert dyn[2].get("hll:str") == b"just text"


def test_an_older_plain_string_is_replaced_by_the_hll(dyn: list[redis.Redis]) -> None:
    dyn[0].pfadd("hll:old", b"a")
    concurrent(dyn, "hll:old", b"just text", hll_of(dyn[0], "scratch:a", [b"a", b"b"]))
    assert dyn[0].pfcount("hll:old") == 2
    assert dyn[1].pfadd("hll:old", b"c") == 1
    assert siblings(dyn[2], "hll:old") == [dyn[2].get("hll:old")]
    assert dyn[0].pfcount("hll:old") == 3


def test_concurrent_bitmap_writes_resolve_last_writer_wins(dyn: list[redis.Redis]) -> None:
    dyn[0].setbit("bits", 0, 1)
    concurrent(dyn, "bits", b"\x80\x01", b"\x80\x00\x02")  # the second one is newer
    assert len(siblings(dyn[0], "bits")) == 2
    assert dyn[0].get("bits") == b"\x80\x00\x02"
    assert dyn[1].bitcount("bits") == 2  # counts what GET shows
    # A bitmap write builds on the newest version and supersedes both: the older
    # version's bit 15 is gone (the README's semantics table says so).
    assert dyn[1].setbit("bits", 1, 1) == 0
    assert siblings(dyn[2], "bits") == [b"\xc0\x00\x02"]
    assert dyn[2].getbit("bits", 15) == 0


def test_identical_concurrent_versions_are_one_hll(dyn: list[redis.Redis]) -> None:
    """Concurrent PFCOUNTs that store the same count make identical versions; they are
    one HLL, cached count included (here a cache that says 12345 of an empty HLL)."""
    cached = b"HYLL\x01\x00\x00\x00" + (12345).to_bytes(8, "little") + b"\x7f\xff"
    dyn[0].pfadd("hll:same", b"a")
    concurrent(dyn, "hll:same", cached, cached)
    assert len(siblings(dyn[0], "hll:same")) == 2
    assert dyn[1].pfcount("hll:same") == 12345  # the cache, not a recount of a merge
