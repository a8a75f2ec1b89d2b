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
