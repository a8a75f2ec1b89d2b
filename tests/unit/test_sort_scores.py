"""SORT's weights read many at a time (sortspec.sort_scores, by C loops where it may)
are the weights read one by one as Redis' strtod reads them, whatever the elements."""

from __future__ import annotations

import random

import pytest

from dynredis.commands import sortspec

ODD = [b"1e400", b"-1e400", b"1e-400", b"0", b"-0", b"00", b"0.0", b"1e", b"", b"+-1",
       b"1..2", b".5", b"5.", b"2.2250738585072014e-308", b"4e-320", b"-4.9e-324",
       b"1.7976931348623157e308", b"1.8e308", b"12345678901234567890", b"0e0", b"+.e1",
       b"e5", b"-", b".", b"1 ", b" 1", b"1_0", b"nan", b"inf", b"-infinity", b"0x1p3",
       b"1\x002", b"\x00"]


def _one_by_one(raws: list[bytes]) -> list[float | None]:
    return [sortspec.sort_score(r) for r in raws]


@pytest.mark.parametrize("odd", ODD)
def test_each_odd_weight_among_plain_numbers(odd: bytes) -> None:
    raws = [b"3", odd, b"-2.5", b"1e5"]
    assert repr(sortspec.sort_scores(raws)) == repr(_one_by_one(raws))


def test_many_weights() -> None:
    rng = random.Random(7)
    raws = [rng.choice(ODD) if rng.random() < 0.01 else
            repr(rng.uniform(-1e6, 1e6)).encode() for _ in range(5000)]
    assert repr(sortspec.sort_scores(raws)) == repr(_one_by_one(raws))
    integers = [b"%d" % rng.randrange(-10**9, 10**9) for _ in range(5000)]
    assert sortspec.sort_scores(integers) == _one_by_one(integers)
    assert sortspec.sort_scores([]) == []
