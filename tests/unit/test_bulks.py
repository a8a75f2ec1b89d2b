"""Replies of many elements built by resp/bulks.py: the same bytes as the per-element
encoder, whatever the elements' lengths and the reply's size."""

from __future__ import annotations

import random

import pytest

from dynredis.commands import zfloat
from dynredis.commands.zsets import pairs_reply
from dynredis.resp import bulks
from dynredis.resp import encode as resp

LENGTHS = [0, 1, 5, 1023, 1024, 3000]


def _items(n: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(rng.choice(LENGTHS)) for _ in range(n)]


@pytest.mark.parametrize("n", [0, 1, 3, bulks.JOIN_SLICE, 3 * bulks.JOIN_SLICE + 7])
def test_arrays_and_pairs_as_the_element_encoder_makes_them(n: int) -> None:
    keys, values = _items(n, 1), _items(n, 2)
    assert bulks.array(keys) == resp.array([resp.bulk(k) for k in keys])
    assert bulks.array(keys, b"~") == resp.encode(resp.SetReply(keys), 3)
    flat = resp.array([x for k, v in zip(keys, values, strict=True) for x in (resp.bulk(k), resp.bulk(v))])
    assert bulks.pairs(keys, values, 2, as_map=True) == flat
    assert bulks.pairs(keys, values, 2, as_map=False) == flat
    assert bulks.pairs(keys, values, 3, as_map=False) == resp.array(
        [resp.array([resp.bulk(k), resp.bulk(v)]) for k, v in zip(keys, values, strict=True)])
    head = b"%%%d\r\n" % n
    assert bulks.pairs(keys, values, 3, as_map=True) == head + b"".join(
        resp.bulk(k) + resp.bulk(v) for k, v in zip(keys, values, strict=True))


def test_an_element_that_is_not_bytes_is_refused_not_misencoded() -> None:
    with pytest.raises(TypeError):
        bulks.array([b"a", 7])  # type: ignore[list-item]


def test_nil_elements() -> None:
    nil = resp.nil(2)
    items = [b"a", None, b"", None]
    assert bulks.nullable_array(items, nil) == b"*4\r\n$1\r\na\r\n$-1\r\n$0\r\n\r\n$-1\r\n"


@pytest.mark.parametrize("proto", [2, 3])
def test_scores_print_as_redis_prints_them(proto: int) -> None:
    scores = [float("inf"), float("-inf"), 0.1, -0.0, 3.0, 1e300, 2.5e-310, 1 / 3]
    members = _items(len(scores), 3)
    pairs = list(zip(members, scores, strict=True))
    want = [resp.bulk(m) + zfloat.reply(s, proto) for m, s in pairs]
    if proto >= 3:
        assert pairs_reply(pairs, True, proto) == resp.array([b"*2\r\n" + w for w in want])
    else:
        assert pairs_reply(pairs, True, proto) == b"*%d\r\n" % (2 * len(pairs)) + b"".join(want)
    assert pairs_reply(pairs, False, proto) == resp.array([resp.bulk(m) for m in members])
