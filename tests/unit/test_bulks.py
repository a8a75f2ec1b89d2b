"""Replies of many elements built by resp/bulks.py: the same bytes as the per-element
encoder, whatever the elements' lengths and the reply's size, and the same bytes when
a long one is encoded a slice at a time (SlicedReply) as at once."""

from __future__ import annotations

import gc
import random

import pytest

from dynredis.commands import zfloat
from dynredis.commands.zsets import pairs_reply, ranked_reply
from dynredis.resp import bulks
from dynredis.resp import encode as resp

LENGTHS = [0, 1, 5, 1023, 1024, 3000]
SIZES = [0, 1, 3, bulks.JOIN_SLICE, bulks.STREAM_ROWS, 2 * bulks.STREAM_ROWS + 7]


def _items(n: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(rng.choice(LENGTHS)) for _ in range(n)]


def _sent(reply: bytes | bulks.SlicedReply) -> bytes:
    """What the connection writes of a reply: a long one slice by slice, as
    server/client.py streams it."""
    if isinstance(reply, bytes):
        return reply
    out = [reply.before]
    while (part := reply.next_slice()) is not None:
        out.append(part)
    assert reply.done()
    return b"".join([*out, reply.after])


def _both(make: object) -> bytes:
    """The reply sent a slice at a time, checked equal to the reply made at once."""
    sent = _sent(make())  # type: ignore[operator]
    at_once = bulks.whole(make())  # type: ignore[operator]
    assert sent == at_once
    return sent


@pytest.mark.parametrize("n", SIZES)
def test_arrays_and_pairs_as_the_element_encoder_makes_them(n: int) -> None:
    keys, values = _items(n, 1), _items(n, 2)
    assert bulks.array(keys) == resp.array([resp.bulk(k) for k in keys])
    assert _both(lambda: bulks.array_reply(keys)) == resp.array([resp.bulk(k) for k in keys])
    assert _both(lambda: bulks.array_reply(keys, b"~")) == resp.encode(resp.SetReply(keys), 3)
    flat = resp.array([x for k, v in zip(keys, values, strict=True)
                       for x in (resp.bulk(k), resp.bulk(v))])
    assert _both(lambda: bulks.pairs_reply(keys, values, 2, as_map=True)) == flat
    assert _both(lambda: bulks.pairs_reply(keys, values, 2, as_map=False)) == flat
    assert _both(lambda: bulks.pairs_reply(keys, values, 3, as_map=False)) == resp.array(
        [resp.array([resp.bulk(k), resp.bulk(v)]) for k, v in zip(keys, values, strict=True)])
    head = b"%%%d\r\n" % n
    assert _both(lambda: bulks.pairs_reply(keys, values, 3, as_map=True)) == head + b"".join(
        resp.bulk(k) + resp.bulk(v) for k, v in zip(keys, values, strict=True))


def test_only_long_replies_are_sliced() -> None:
    assert isinstance(bulks.array_reply([b"x"] * bulks.STREAM_ROWS), bytes)
    assert isinstance(bulks.array_reply([b"x"] * (bulks.STREAM_ROWS + 1)), bulks.SlicedReply)


def test_an_element_that_is_not_bytes_is_refused_not_misencoded() -> None:
    with pytest.raises(TypeError):
        bulks.array([b"a", 7])  # type: ignore[list-item]


def test_nil_elements() -> None:
    nil = resp.nil(2)
    items = [b"a", None, b"", None]
    assert bulks.nullable_array(items, nil) == b"*4\r\n$1\r\na\r\n$-1\r\n$0\r\n\r\n$-1\r\n"


@pytest.mark.parametrize("proto", [2, 3])
@pytest.mark.parametrize("n", [8, 2 * bulks.STREAM_ROWS + 3])
def test_scores_print_as_redis_prints_them(proto: int, n: int) -> None:
    special = [float("inf"), float("-inf"), 0.1, -0.0, 3.0, 1e300, 2.5e-310, 1 / 3]
    scores = [special[i % len(special)] for i in range(n)]
    members = _items(n, 3)
    pairs = list(zip(members, scores, strict=True))
    want = [resp.bulk(m) + zfloat.reply(s, proto) for m, s in pairs]
    if proto >= 3:
        expected = resp.array([b"*2\r\n" + w for w in want])
    else:
        expected = b"*%d\r\n" % (2 * n) + b"".join(want)
    assert pairs_reply(pairs, True, proto) == expected
    ranked = [(s, m) for m, s in pairs]
    assert _both(lambda: ranked_reply(ranked, True, proto)) == expected
    plain = resp.array([resp.bulk(m) for m in members])
    assert pairs_reply(pairs, False, proto) == plain
    assert _both(lambda: ranked_reply(ranked, False, proto)) == plain


@pytest.mark.parametrize("k", [5, 2 * bulks.STREAM_ROWS + 1])
def test_picks_by_index_are_gathered_as_listed(k: int) -> None:
    keys, values = _items(300, 4), _items(300, 5)
    rng = random.Random(6)
    index = [rng.randrange(300) for _ in range(k)]
    picked_k, picked_v = [keys[i] for i in index], [values[i] for i in index]
    assert _both(lambda: bulks.array_reply(keys, index=index)) == \
        resp.array([resp.bulk(x) for x in picked_k])
    for proto in (2, 3):
        assert _both(lambda p=proto: bulks.pairs_reply(keys, values, p, False, index)) == \
            bulks.whole(bulks.pairs_reply(picked_k, picked_v, proto, False))


def test_a_long_reply_lets_go_of_its_own_rows_as_it_sends_them():
    """A million-element reply's lists freed whole when it ended held that turn 20-40
    ms (a reference each to drop, most of them cache misses): the rows of lists only the
    reply holds are let go of a slice at a time, and the collector does not walk them;
    a caller's own list is left as it is."""
    n = 2 * bulks.STREAM_ROWS + 7
    keys, values = _items(n, 3), _items(n, 4)
    want = bulks.whole(bulks.pairs_reply(list(keys), list(values), 2, True))
    mine_k, mine_v = list(keys), list(values)
    reply = bulks.pairs_reply(mine_k, mine_v, 2, True, owned=True)
    assert isinstance(reply, bulks.SlicedReply)
    assert not gc.is_tracked(mine_k) and not gc.is_tracked(mine_v)  # (atomic rows)
    out = [reply.before, reply.next_slice()]
    assert mine_k[:bulks.STREAM_ROWS] == mine_v[:bulks.STREAM_ROWS] == \
        [None] * bulks.STREAM_ROWS
    assert mine_k[bulks.STREAM_ROWS:] == keys[bulks.STREAM_ROWS:]
    assert b"".join([*out, _sent(reply)[len(reply.before):]]) == want
    assert not any(mine_k) and not any(mine_v)
    theirs = list(keys)
    assert _sent(bulks.array_reply(theirs)) == bulks.array(keys) and theirs == keys
