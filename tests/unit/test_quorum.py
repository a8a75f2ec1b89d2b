"""Quorum accounting (dynredis.core.quorum) and the hybrid logical clock (hlc)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dynredis.core import clock as dvv
from dynredis.core import obj as objmod
from dynredis.core.hlc import HLC, LOGICAL_BITS, wall_ms
from dynredis.core.quorum import GetCore, PutCore, unreachable

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
    assert (core.answers, set(core.failed)) == before
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
    assert core.complete() and set(core.failed) == {"z"}
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
    assert (set(core.acked), set(core.failed)) == before
    assert set(core.acked).isdisjoint(core.failed)
    # each node once: duplicates count once
    assert len(core.acked) == len(set(core.acked)) and len(core.failed) == len(set(core.failed))


# --- the decisions: the reply, failing early, read repair -------------------------------


@SETTINGS
@given(get_scenarios(), st.booleans())
def test_get_core_replies_once_as_soon_as_the_outcome_is_known(scenario, use_known):
    """The reply comes at the first event after which R answers are in (the merge of
    the answers so far) or R answers have become impossible (NOQUORUM naming how many
    came), never earlier, exactly once; by the time every replica answered or failed
    it has come, and the deadline has nothing left to say."""
    n, r, nodes, objs, order, late = scenario
    core = GetCore(n, r, nval=5)
    known = None
    replies = []
    for step, (node, kind) in enumerate(order):
        if kind == "ok":
            core.add(node, enc(objs[node]))
            if use_known and known is None and objs[node] is not None:
                known = (enc(objs[node]), objs[node])
        else:
            core.fail(node)
        reply = core.decide(known)
        if reply is not None:
            replies.append((step, reply))
        if not replies:
            assert not core.enough() and not core.impossible()
    assert len(replies) == 1 and core.complete()
    step, (err, obj) = replies[0]
    answered = sum(1 for node, kind in order[: step + 1] if kind == "ok")
    if answered >= r:
        assert err is None
        found = [objs[x] for x, kind in order[: step + 1] if kind == "ok" and objs[x]]
        if found:
            assert dvv.join(obj) == dvv.join(dvv.sync_all(found))
        else:
            assert obj is None
    else:
        assert obj is None
        assert err == f"NOQUORUM read needed {r} of 5 replicas, got {answered}"
    for node, kind in late:
        core.add(node, None) if kind == "ok" else core.fail(node)
        assert core.decide(known) is None
    assert core.timed_out() is None


@SETTINGS
@given(get_scenarios(), st.integers(0, 4))
def test_get_core_at_the_deadline_says_what_came(scenario, cut):
    """A read still undecided at its deadline ends with NOQUORUM ... before timeout."""
    n, r, nodes, objs, order, _ = scenario
    core = GetCore(n, r)
    for node, kind in order[: min(cut, len(order))]:
        core.add(node, enc(objs[node])) if kind == "ok" else core.fail(node)
        core.decide()
    if core.replied:
        assert core.timed_out() is None
    else:
        err, obj = core.timed_out()
        assert obj is None
        assert err == f"NOQUORUM read needed {r} of {n} replicas, got {len(core.answers)} " \
                      "before timeout"
        assert core.decide() is None


@SETTINGS
@given(get_scenarios(), st.integers(0, 5), st.sampled_from([0, 10**9]))
def test_read_repair_goes_only_to_replicas_that_answered_something_else(scenario, cut, now):
    """Whenever the read ends (all in, or the deadline with some answers missing): the
    repair goes to the answering replicas whose copy differs from the merge, never to
    one that did not answer, and a dead merge never to one that answered not-found."""
    n, r, nodes, objs, order, _ = scenario
    core = GetCore(n, r)
    for node, kind in order[: min(cut, len(order))]:
        core.add(node, enc(objs[node])) if kind == "ok" else core.fail(node)
    repairs = core.repairs(None, now)
    merged, menc = core.merged()
    dead = merged is not None and objmod.dead_since(merged, now) is not None
    expected = sorted(
        x for x, e in core.answers.items() if e != menc and not (dead and e is None))
    if len(core.answers) < 2 or menc is None or not expected:
        assert repairs is None
        return
    assert repairs == (menc, expected)
    assert set(expected) <= set(core.answers) and not set(expected) & set(core.failed)


def test_a_request_with_too_few_replicas_up_is_refused_before_it_starts() -> None:
    assert unreachable("read", 1, 2, 3) == ("NOQUORUM read needed 2 of 3 replicas, got 1", None)
    assert unreachable("write", 2, 2, 3) is None
    assert unreachable("any", 0, 1, 3) == ("NOQUORUM any needed 1 of 3 replicas, got 0", None)


def test_a_timed_out_read_repairs_the_stale_replica_that_answered() -> None:
    old = dvv.update(dvv.new_with_context((), objmod.sibling(1, b"old")), dvv.EMPTY, b"A")
    new = dvv.update(dvv.new_with_context(dvv.join(old), objmod.sibling(2, b"new")), old, b"A")
    core = GetCore(3, 2)
    core.add("a", objmod.encode(new))
    core.add("b", objmod.encode(old))
    assert core.decide() == (None, new)
    assert core.timed_out() is None  # "c" never answered: the client already has its reply
    assert core.repairs(None, 0) == (objmod.encode(new), ["b"])
    gone = dvv.update(dvv.new_with_context(dvv.join(new), objmod.sibling(3, None)), new, b"A")
    dead = GetCore(3, 2)
    dead.add("a", objmod.encode(gone))
    dead.add("b", None)  # not found: a tombstone would only revive an old clock there
    dead.add("c", objmod.encode(old))
    assert dead.repairs(None, 0) == (objmod.encode(gone), ["c"])


@SETTINGS
@given(put_scenarios())
def test_put_core_replies_once_as_soon_as_the_outcome_is_known(scenario):
    n, w, order, late = scenario
    core = PutCore(n, w, nval=7)
    written = dvv.update(dvv.new_with_context((), objmod.sibling(1, b"v")), dvv.EMPTY, b"A")
    replies = []
    acked = failed = 0
    for node, kind in order:
        if kind == "ok":
            core.ack(node)
            acked += 1
        else:
            core.fail(node)
            failed += 1
        reply = core.decide(written)
        if reply is not None:
            replies.append((acked, failed, reply))
    assert len(replies) == 1
    acked, failed, reply = replies[0]
    if acked >= w:
        assert reply == (None, written) and failed <= n - w
    else:
        assert reply == (f"NOQUORUM write needed {w} of 7 replicas, got {acked}", None)
        assert failed == n - w + 1  # at the very failure that made W impossible
    for node, kind in late:
        core.ack(node) if kind == "ok" else core.fail(node)
        assert core.decide(written) is None
    assert core.timed_out() is None
    open_core = PutCore(3, 2)
    open_core.ack("a")
    assert open_core.decide(written) is None
    assert open_core.timed_out() == ("NOQUORUM write needed 2 of 3 replicas, got 1 before "
                                     "timeout", None)


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
