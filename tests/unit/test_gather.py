"""A bulk batch read from its parts (wire.Gather), its large values filled in place."""

from __future__ import annotations

import random
import tracemalloc

import msgpack
import msgspec
import pytest

from dynredis.core import filled
from dynredis.server.wire import IN_PLACE_FROM, IN_PLACE_MOST, PART, Gather

_encode = msgspec.msgpack.Encoder().encode


def _value(seed: int, n: int) -> bytes:
    return random.Random(seed).randbytes(n)


def _batch() -> list[tuple]:
    """Messages as peers send them: large values at the top of a message and inside a
    list field (a transfer's items), small ones around them, an ext the gatherer's
    stand-ins must not be taken for."""
    return [
        ("hb",),
        ("p", 1, b"k", _value(1, 3 * IN_PLACE_FROM + 5), "a:1", 3, None),
        ("xb", 2, 5, [1, b"a" * 300, _value(2, IN_PLACE_FROM), b"x", -5, 1.5, "s" * 40]),
        ("p", 9, b"k2", b"s" * 70_000, "a:1", 3, b"\0" * 16),
        ("x", msgpack.ExtType(0x44, b"\0\0\0\0\0")),
    ]


def _gathered(g: Gather, body: bytes, cuts: list[int]) -> tuple:
    prev = 0
    for cut in [*cuts, len(body)]:
        g.add(body[prev:cut])
        prev = cut
    return g.take()


@pytest.mark.parametrize("seed", range(40))
def test_a_batch_cut_anywhere_reads_back_as_sent(seed: int) -> None:
    """Parts end anywhere: inside a value's msgpack head, inside the value, on its last
    byte; every message reads back identical, batch after batch from one gatherer."""
    body = msgpack.packb(_batch())
    rng = random.Random(seed)
    g = Gather()
    for _ in range(3):
        if seed % 4 == 0:
            cuts = list(range(PART, len(body), PART))  # the sender's parts
        else:
            cuts = sorted(rng.sample(range(1, len(body)), rng.randint(1, 60)))
        assert _gathered(g, body, cuts) == msgpack.unpackb(body, use_list=False)


def test_a_value_taken_stays_as_it_was_while_the_next_batch_is_gathered() -> None:
    g = Gather()
    first = _value(3, 2 * IN_PLACE_FROM)
    body = _encode([("p", 1, b"k", first, "a:1", 3, None)])
    taken = _gathered(g, body, list(range(PART, len(body), PART)))[0][3]
    second = _encode([("p", 2, b"k", _value(4, 2 * IN_PLACE_FROM), "a:1", 3, None)])
    _gathered(g, second, list(range(PART, len(second), PART)))
    assert taken == first and hash(taken) == hash(first)


def test_a_large_value_is_not_gathered_into_the_batch_buffer() -> None:
    """What spares the copy: the value's parts go to its own bytes as they come, so the
    gathered buffer holds only the messages around it."""
    if not filled.AVAILABLE:
        pytest.skip("values are filled in place on CPython only")
    g = Gather()
    body = _encode([("p", 1, b"k", _value(5, 4 * IN_PLACE_FROM), "a:1", 3, None)])
    for at in range(0, len(body), PART):
        g.add(body[at : at + PART])
    assert g.size < 100
    assert g.take()[0][3] == _value(5, 4 * IN_PLACE_FROM)


def test_a_batch_that_ends_inside_a_value_is_refused_and_the_next_reads_whole() -> None:
    g = Gather()
    body = _encode([("p", 1, b"k", _value(6, 2 * IN_PLACE_FROM), "a:1", 3, None)])
    g.add(body[: len(body) // 2])
    with pytest.raises(ValueError):
        g.take()
    assert _gathered(g, body, [len(body) // 3]) == msgpack.unpackb(body, use_list=False)


def test_fill_copies_only_within_both_objects() -> None:
    if not filled.AVAILABLE:
        pytest.skip("CPython only")
    dst = filled.blank(8)
    filled.fill(dst, 0, b"abcdefgh", 0, 8)
    filled.fill(dst, 6, b"xyz", 1, 3)
    assert dst == b"abcdefyz"
    for at, start, end in [(7, 0, 2), (-1, 0, 1), (0, 2, 4), (0, 2, 1)]:
        with pytest.raises(ValueError):
            filled.fill(dst, at, b"xyz", start, end)
    with pytest.raises(TypeError):
        filled.fill(dst, 0, bytearray(b"x"), 0, 1)  # type: ignore[arg-type]


def test_a_value_head_claiming_more_than_any_value_takes_memory_only_as_bytes_come() -> None:
    """A bin's own object is made when its head arrives; a head claiming more than
    IN_PLACE_MOST is gathered plainly instead (a peer's bad or hostile frame does not
    make the node allocate gigabytes it never receives), and the batch, cut short, is
    refused."""
    g = Gather()
    head = b"\x91\x93\xa1p\x01\xc6" + (IN_PLACE_MOST + 1).to_bytes(4, "big")
    tracemalloc.start()
    try:
        g.add(head + b"x" * 1000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20
    with pytest.raises(ValueError):
        g.take()
