"""HyperLogLog values are Redis' own: the codec against a real redis-server, and HLL
strings moved between dynredis and redis-server with GET and SET."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dynredis.commands import hll
from dynredis.commands.hll import Hll

from .conftest import HOST, SOCKET_TIMEOUT_S, Cluster

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def rr(real_redis: redis.Redis) -> Iterator[redis.Redis]:
    """The real redis-server, bytes in and out."""
    c = redis.Redis(host=HOST, port=real_redis.port,  # type: ignore[attr-defined]
                    socket_timeout=SOCKET_TIMEOUT_S)
    yield c
    c.close()


@pytest.fixture(scope="module")
def dyn(cluster: Cluster) -> Iterator[list[redis.Redis]]:
    """A bytes client per node of a 3-node cluster."""
    cs = [cluster.client(i, decode_responses=False) for i in range(cluster.nodes)]
    yield cs
    for c in cs:
        c.close()


# Batches of elements: a few named ones, or runs of numbered ones large enough to pass
# the sparse limit (dense promotion happens part way through a batch).
batch = st.one_of(
    st.lists(st.binary(max_size=5), min_size=1, max_size=8),
    st.tuples(st.integers(0, 9), st.sampled_from([50, 400, 1500, 4000])).map(
        lambda t: [b"n%d" % i for i in range(t[0] * 1000, t[0] * 1000 + t[1])]),
)
CODEC = settings(max_examples=40, deadline=None,
                 suppress_health_check=[HealthCheck.function_scoped_fixture,
                                        HealthCheck.too_slow])


@CODEC
@given(st.lists(batch, min_size=1, max_size=5))
def test_codec_writes_and_counts_what_redis_does(rr: redis.Redis,
                                                 batches: list[list[bytes]]) -> None:
    rr.delete("codec")
    h = Hll(hll.empty())
    for i, els in enumerate(batches):
        changed = 0
        for e in els:
            result = h.add(e)
            assert result >= 0
            changed += result
        if changed:
            h.invalidate()
        assert rr.pfadd("codec", *els) == (1 if changed else 0)
        assert h.encode() == rr.get("codec"), f"after batch {i}"
        count = h.count()
        assert count == rr.pfcount("codec")
        h.set_card(count)  # PFCOUNT caches it in the header
        assert h.encode() == rr.get("codec")


@CODEC
@given(st.lists(st.one_of(st.none(), batch), min_size=2, max_size=4),
       st.lists(st.integers(0, 3), min_size=1, max_size=4))
def test_codec_merges_as_pfmerge_and_counts_unions_as_pfcount(
        rr: redis.Redis, contents: list[list[bytes] | None], picks: list[int]) -> None:
    keys = [f"m{i}" for i in range(len(contents))]
    rr.delete(*keys)
    for k, els in zip(keys, contents, strict=True):
        if els is not None:
            rr.pfadd(k, *els)
    args = [keys[p % len(keys)] for p in picks]
    raw = bytearray(hll.REGISTERS)
    use_dense = False
    for k in args:
        data = rr.get(k)
        if data is not None:
            h = Hll(data)
            use_dense = use_dense or h.dense
            assert h.merge_registers(raw)
    if len(args) > 1:
        assert hll.count_raw(raw) == rr.pfcount(*args)
    dest_data = rr.get(args[0])
    dest = Hll(dest_data if dest_data is not None else hll.empty())
    if use_dense:
        assert dest.to_dense()
    hll.merge_into(dest, raw)
    assert rr.pfmerge(*args)
    assert dest.encode() == rr.get(args[0])


@pytest.mark.parametrize("size", [3, 600, 20_000])
def test_an_hll_made_here_works_in_redis_and_the_other_way_round(
        dyn: list[redis.Redis], rr: redis.Redis, size: int) -> None:
    elements = [b"el:%d" % i for i in range(size)]
    more = [b"more:%d" % i for i in range(size // 2 + 1)]
    for chunk in range(0, size, 1000):
        dyn[0].pfadd(f"here:{size}", *elements[chunk:chunk + 1000])
        rr.pfadd(f"there:{size}", *elements[chunk:chunk + 1000])
    ours, theirs = dyn[1].get(f"here:{size}"), rr.get(f"there:{size}")
    assert ours == theirs  # the same elements make the same bytes
    assert ours is not None and (len(ours) == hll.DENSE_SIZE) == (size > 1000)

    rr.set(f"copy:{size}", ours)  # made here, counted there
    dyn[2].set(f"copy:{size}", theirs)  # made there, counted here
    count = rr.pfcount(f"there:{size}")
    assert rr.pfcount(f"copy:{size}") == count
    assert dyn[0].pfcount(f"copy:{size}") == count
    assert dyn[1].pfcount(f"here:{size}") == count

    # Both go on from the other's value the same way, cached cardinality included.
    assert rr.pfadd(f"copy:{size}", *more) == dyn[1].pfadd(f"copy:{size}", *more) == 1
    assert dyn[2].pfcount(f"copy:{size}") == rr.pfcount(f"copy:{size}")
    assert dyn[0].get(f"copy:{size}") == rr.get(f"copy:{size}")


def test_what_redis_refuses_as_an_hll_is_refused_here(dyn: list[redis.Redis],
                                                       rr: redis.Redis) -> None:
    dense = Hll(hll.empty())
    assert dense.to_dense()
    bad = {
        "short": b"HYLL\x01\x00",
        "magic": b"HYLX" + hll.empty()[4:],
        "encoding": b"HYLL\x02" + hll.empty()[5:],
        "dense size": dense.encode()[:-1],
        "plain": b"hello world, not an hll",
    }
    for what, value in bad.items():
        for c in (dyn[0], rr):
            c.set("bad", value)
            for call in (lambda c=c: c.pfadd("bad", "x"), lambda c=c: c.pfcount("bad"),
                         lambda c=c: c.pfcount("bad", "other"),
                         lambda c=c: c.pfmerge("dest", "bad")):
                with pytest.raises(redis.ResponseError) as e:
                    call()
                assert str(e.value) == "WRONGTYPE Key is not a valid HyperLogLog string value.", what
    corrupt = b"HYLL\x01" + bytes(10) + b"\x80\x7f\xfe"  # sparse runs a register short
    for c in (dyn[0], rr):
        c.set("corrupt", corrupt)
        with pytest.raises(redis.ResponseError, match="INVALIDOBJ Corrupted HLL object detected"):
            c.pfcount("corrupt")
