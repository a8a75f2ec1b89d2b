"""Dot sets against a plain set of dots (the model), under any order of additions."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from dynredis.core.dotset import DotSet

ACTORS = [b"a", b"b", b"c"]
dot = st.tuples(st.sampled_from(ACTORS), st.integers(1, 40))
dots = st.lists(dot, max_size=80)
prefixes = st.lists(st.tuples(st.sampled_from(ACTORS), st.integers(0, 40)), max_size=4)


def build(items: list[tuple[bytes, int]], pre: list[tuple[bytes, int]] = ()) -> DotSet:
    ds = DotSet()
    for actor, n in pre:
        ds.add_prefix(actor, n)
    ds.add_all(items)
    return ds


def model(items, pre=()) -> set[tuple[bytes, int]]:
    out = set(items)
    for actor, n in pre:
        out |= {(actor, k) for k in range(1, n + 1)}
    return out


def assert_canonical(ds: DotSet) -> None:
    """The cloud never holds a dot the vector covers or the next one after it."""
    for actor, extra in ds.cloud.items():
        assert extra
        top = ds.vv.get(actor, 0)
        assert min(extra) > top + 1


@given(dots, prefixes)
def test_membership_equals_the_model(items, pre):
    ds = build(items, pre)
    want = model(items, pre)
    assert set(ds.dots()) == want
    assert len(ds) == len(want)
    for actor in ACTORS:
        for k in range(1, 45):
            assert ((actor, k) in ds) == ((actor, k) in want)
            assert ds.has(actor, k) == ((actor, k) in want)
        assert ds.top(actor) == max((k for a, k in want if a == actor), default=0)
    assert_canonical(ds)


@given(dots, st.randoms())
def test_order_of_additions_does_not_matter(items, rnd):
    shuffled = list(items)
    rnd.shuffle(shuffled)
    assert build(items).pack() == build(shuffled).pack()


@given(dots, prefixes, dots, prefixes)
def test_union_and_covers(a, pa, b, pb):
    x, y = build(a, pa), build(b, pb)
    u = x.copy()
    u.update(y)
    assert set(u.dots()) == model(a, pa) | model(b, pb)
    assert_canonical(u)
    assert u.covers(x) and u.covers(y)
    assert x.covers(y) == (model(b, pb) <= model(a, pa))


@given(dots, prefixes, dots, prefixes, st.integers(0, 200))
def test_missing_from_is_the_difference_or_none_when_over_the_limit(a, pa, b, pb, limit):
    x, y = build(a, pa), build(b, pb)
    want = model(a, pa) - model(b, pb)
    got = x.missing_from(y, limit)
    if got is None:
        assert len(want) > limit
    else:
        assert set(got) == want and len(got) == len(want)
        assert len(got) <= limit


@settings(max_examples=50)
@given(dots, prefixes)
def test_pack_round_trip(items, pre):
    ds = build(items, pre)
    again = DotSet.unpack(ds.pack())
    assert again == ds and again.pack() == ds.pack()


def test_a_gap_filled_folds_the_cloud_into_the_vector():
    ds = DotSet.of([(b"a", 1), (b"a", 3), (b"a", 4)])
    assert ds.vv == {b"a": 1} and ds.cloud == {b"a": {3, 4}}
    ds.add(b"a", 2)
    assert ds.vv == {b"a": 4} and ds.cloud == {}
