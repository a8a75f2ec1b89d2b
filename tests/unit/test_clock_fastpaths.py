"""The plain-SET fast path equals the general update with the replica's own context."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from dynredis.core import clock as dvv

actors = st.sampled_from([b"A", b"B", b"C", b"D"])


@st.composite
def clocks(draw: st.DrawFn) -> dvv.Clock:
    c = dvv.EMPTY
    for i in range(draw(st.integers(0, 8))):
        actor = draw(actors)
        if draw(st.booleans()):
            ctx = dvv.join(c)
        else:
            ctx = ()
        c = dvv.update(dvv.new_with_context(ctx, ("v", i)), c, actor)
        if draw(st.booleans()):
            other = dvv.update(dvv.new_with_context((), ("w", i)), None, draw(actors))
            c = dvv.sync(c, other)
    return c


@settings(max_examples=300, deadline=None)
@given(clocks(), actors)
def test_overwrite_equals_update_with_own_context(c: dvv.Clock, actor: bytes) -> None:
    expected = dvv.update(dvv.new_with_context(dvv.join(c), "new"), c, actor)
    assert dvv.overwrite(c, actor, "new") == expected
    assert dvv.values(dvv.overwrite(c, actor, "new")) == ["new"]


def test_overwrite_of_nothing() -> None:
    assert dvv.overwrite(None, b"A", "x") == dvv.update(dvv.new_with_context((), "x"), None, b"A")


@st.composite
def related_clocks(draw: st.DrawFn) -> tuple[dvv.Clock, dvv.Clock]:
    """Two replicas' clocks reached by real updates and syncs from a shared history."""
    replicas = [dvv.EMPTY, dvv.EMPTY, dvv.EMPTY]
    for i in range(draw(st.integers(0, 12))):
        step = draw(st.integers(0, 2))
        r = draw(st.integers(0, 2))
        if step == 0:
            ctx_from = draw(st.integers(0, 2))
            ctx = dvv.join(replicas[ctx_from]) if draw(st.booleans()) else ()
            replicas[r] = dvv.update(dvv.new_with_context(ctx, ("v", i)), replicas[r],
                                     b"ABC"[r : r + 1])
        elif step == 1:
            other = draw(st.integers(0, 2))
            replicas[r] = dvv.sync(replicas[r], replicas[other])
        else:
            replicas[r] = dvv.overwrite(replicas[r], b"ABC"[r : r + 1], ("o", i))
    return replicas[draw(st.integers(0, 2))], replicas[draw(st.integers(0, 2))]


@settings(max_examples=500, deadline=None)
@given(related_clocks())
def test_a_dominating_incoming_clock_is_the_sync(pair: tuple[dvv.Clock, dvv.Clock]) -> None:
    """The replica fast path: when the incoming clock's causal past strictly contains
    the local one, syncing them gives the incoming clock unchanged."""
    local, incoming = pair
    if dvv.less(local, incoming):
        assert dvv.sync(local, incoming) == incoming
