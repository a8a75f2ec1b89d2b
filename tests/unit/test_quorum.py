"""Quorum accounting (dynredis.core.quorum) and the hybrid logical clock (hlc)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dynredis.core import clock as dvv
from dynredis.core import obj as objmod
from dynredis.core.hlc import HLC, LOGICAL_BITS, wall_ms
from dynredis.core.quorum import GetCore, PutCore

SETTINGS = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

ACTORS = (b"A", b"B", b"C")


@st.composite
def related_objects(draw, count: int) -> list[dvv.Clock | None]:
    """`count` replica objects (or None for not found) from one write history."""
    clocks = dict.fromkeys(ACTORS, dvv.EMPTY)
    ts = 0
    for _ in range(draw(st.integers(0, 8))):
        if draw(st.booleans()):
            x, y = draw(st.sampled_from(ACTORS)), draw(st.sampled_from(ACTORS))
            clocks[x] = dvv.sync(clocks[x], clocks[y])
        else:
            src = draw(st.one_of(st.none(), st.sampled_from(ACTORS)))
            dst = draw(st.sampled_from(ACTORS))
            ctx = dvv.join(clocks[src]) if src is not None else ()
            ts += 1
            data = draw(st.one_of(st.none(), st.binary(max_size=3)))
            sib = objmod.sibling(ts, data, draw(st.sampled_from([0, 5, 10**6])))
            clocks[dst] = dvv.update(dvv.new_with_context(ctx, sib), clocks[dst], dst)
    out: list[dvv.Clock | None] = []
    for _ in range(count):
        c = clocks[draw(st.sampled_from(ACTORS))]
        out.append(None if c == dvv.EMPTY or draw(st.integers(0, 5)) == 0 else c)
    return out


@st.composite
def get_scenarios(draw):
    n = draw(st.integers(1, 5))
    r = draw(st.integers(1, n))
    nodes = [f"n{i}" for i in range(n)]
    objs = draw(related_objects(n))
    # Each node either answers or fails; events arrive in any order, and a node may
    # also produce a late second event of the other kind (which must be ignored).
    outcome = {node: draw(st.booleans()) for node in nodes}
    events = [(node, "ok" if outcome[node] else "fail") for node in nodes]
    extra = draw(st.lists(st.sampled_from(nodes), max_size=3, unique=True))
    order = draw(st.permutations(events))
    late = [(node, "fail" if outcome[node] else "ok") for node in extra]
    return n, r, nodes, dict(zip(nodes, objs, strict=True)), order, late


def enc(o: dvv.Clock | None) -> bytes | None:
    return None if o is None else objmod.encode(o)


@SETTINGS
@given(get_scenarios())
def test_get_core_thresholds(scenario):
    n, r, nodes, objs, order, late = scenario
    core = GetCore(n, r)
    answered = failed = 0
    assert not core.enough() and not core.complete()
    for node, kind in order:
        if kind == "ok":
            core.add(node, enc(objs[node]))
            answered += 1
        else:
            core.fail(node)
            failed += 1
        assert core.enough() == (answered >= r)
        assert core.impossible() == (failed > n - r)
        assert core.complete() == (answered + failed == n)
    # Late contradicting events change nothing.
    before = (dict(core.answers), set(core.failed))
    for node, kind in late:
        if kind == "ok":
            core.add(node, enc(objs[node]))
        else:
            core.fail(node)
    assert (core.answers, core.failed) == before
    assert core.complete()


@SETTINGS
@given(get_scenarios(), st.booleans())
def test_get_core_merge_and_stale(scenario, use_known):
    n, r, nodes, objs, order, _ = scenario
    core = GetCore(n, r)
    for node, kind in order:
        if kind == "ok":
            core.add(node, enc(objs[node]))
        else:
            core.fail(node)
    found = [objs[x] for x in core.answers if objs[x] is not None]
    known = None
    if use_known and found:
        known = (objmod.encode(found[0]), found[0])
    merged, merged_enc = core.merged(known)
    # Read repair skips the merge when every answer is the same: exactly when the
    # merge would find no stale replica.
    assert core.unanimous() == (core.stale(merged_enc) == [])
    if not found:
        assert (merged, merged_enc) == (None, None)
        assert core.stale(merged_enc) == []
        return
    expected = dvv.sync_all(found)
    assert sorted(dvv.values(merged)) == sorted(dvv.values(expected))
    assert dvv.join(merged) == dvv.join(expected)
    assert objmod.encode(merged) == merged_enc
    assert objmod.decode(merged_enc) == merged
    # Merging is order-independent: same bytes whichever replica answered first.
    again = GetCore(n, r)
    for node in reversed(list(core.answers)):
        again.add(node, core.answers[node])
    assert again.merged()[1] == merged_enc
    # Read repair targets: exactly the answers whose bytes differ from the merge.
    assert core.stale(merged_enc) == sorted(
        x for x, e in core.answers.items() if e != merged_enc
    )
    for x in core.stale(merged_enc):
        assert x in core.answers and x not in core.failed
    # Replicas already holding the merged object are never repaired.
    for x, e in core.answers.items():
        if e is not None and objmod.decode(e) == merged:
            assert x not in core.stale(merged_enc)


def test_get_core_examples():
    a = dvv.update(dvv.new_with_context((), objmod.sibling(1, b"a")), dvv.EMPTY, b"A")
    b = dvv.update(dvv.new_with_context((), objmod.sibling(2, b"b")), dvv.EMPTY, b"B")
    core = GetCore(3, 2)
    core.add("x", objmod.encode(a))
    core.fail("x")  # a node that answered cannot fail afterwards
    core.add("y", None)
    assert core.enough() and not core.complete() and not core.impossible()
    core.fail("z")
    core.add("z", objmod.encode(b))  # nor answer after failing
    assert core.complete() and core.failed == {"z"}
    merged, merged_enc = core.merged()
    assert merged == a and merged_enc == objmod.encode(a)
    assert core.stale(merged_enc) == ["y"]
    core2 = GetCore(2, 2)
    core2.add("x", objmod.encode(a))
    core2.add("y", objmod.encode(b))
    merged, merged_enc = core2.merged()
    assert sorted(dvv.values(merged)) == sorted(dvv.values(a) + dvv.values(b))
    assert core2.stale(merged_enc) == ["x", "y"]
    core3 = GetCore(3, 2)
    core3.fail("x")
    assert not core3.impossible()
    core3.fail("y")
    assert core3.impossible()


@st.composite
def put_scenarios(draw):
    n = draw(st.integers(1, 5))
    w = draw(st.integers(1, n))
    nodes = [f"n{i}" for i in range(n)]
    outcome = {node: draw(st.booleans()) for node in nodes}
    order = draw(st.permutations([(node, "ok" if outcome[node] else "fail") for node in nodes]))
    dup = draw(st.lists(st.sampled_from(nodes), max_size=4))
    late = [(node, kind) for node in dup for kind in ("ok", "fail")]
    return n, w, order, late


@SETTINGS
@given(put_scenarios())
def test_put_core_thresholds(scenario):
    n, w, order, late = scenario
    core = PutCore(n, w)
    acked = failed = 0
    assert not core.enough() and not core.complete()
    for node, kind in order:
        if kind == "ok":
            core.ack(node)
            core.ack(node)  # duplicate acks count once
            acked += 1
        else:
            core.fail(node)
            core.fail(node)
            failed += 1
        assert core.enough() == (acked >= w)
        assert core.impossible() == (failed > n - w)
        assert core.complete() == (acked + failed == n)
        assert not (core.enough() and core.impossible())
    before = (set(core.acked), set(core.failed))
    for node, kind in late:
        if kind == "ok":
            core.ack(node)
        else:
            core.fail(node)
    assert (core.acked, core.failed) == before
    assert core.acked.isdisjoint(core.failed)


# --- hybrid logical clock -------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    st.integers(0, 2**40),
    st.lists(
        st.one_of(
            st.tuples(st.just("now"), st.integers(0, 2**41)),
            st.tuples(st.just("observe"), st.integers(0, 2**57)),
        ),
        max_size=60,
    ),
)
def test_hlc_strictly_increasing_and_moves_past_observed(start, ops):
    h = HLC()
    issued = h.now(start)
    assert wall_ms(issued) == start
    seen = issued
    for kind, x in ops:
        if kind == "now":
            ts = h.now(x)
            assert ts > seen, "never goes backwards, even when the wall clock does"
            assert ts >= x << LOGICAL_BITS, "never behind the wall clock"
            assert wall_ms(ts) >= x
            seen = ts
        else:
            h.observe(x)
            seen = max(seen, x)
    assert h.now(0) > seen


def test_hlc_examples():
    h = HLC()
    a = h.now(100)
    assert a == 100 << LOGICAL_BITS and wall_ms(a) == 100
    b = h.now(100)
    c = h.now(50)  # the wall clock stepped back
    assert a < b < c and wall_ms(c) == 100
    h.observe(200 << LOGICAL_BITS | 7)
    d = h.now(150)
    assert d > (200 << LOGICAL_BITS | 7)
    h.observe(1)  # observing an old timestamp does not move the clock back
    assert h.now(0) > d
    assert HLC(last=5).now(0) == 6
