"""Properties of the DVVSet clock (dynredis.core.clock) and the stored object (obj).

The central property checks the clock against a causal-history oracle: three replicas
(actors A, B, C) take client writes (with a context read earlier from some replica,
or with no context) and sync with each other; the oracle tracks, for every write, the
exact set of writes its context had seen. A replica must then hold, as siblings,
exactly the writes it has seen that no other write it has seen overwrote.
"""

from __future__ import annotations

import base64
import string
from collections import Counter
from dataclasses import dataclass, field

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dynredis.core import clock as dvv
from dynredis.core import obj as objmod
from dynredis.core.clock import Clock

ACTORS = (b"A", b"B", b"C")
NCLIENTS = 3

SETTINGS = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


# --- the model ------------------------------------------------------------------------


@dataclass
class Write:
    wid: int
    actor: bytes  # the coordinating replica
    dot: tuple[bytes, int]  # as assigned by the clock
    ctx_vv: dict[bytes, int]  # the version vector the client passed
    ctx_set: frozenset[int]  # the set oracle: write ids the context had seen


@dataclass
class Model:
    clocks: dict[bytes, dvv.Clock] = field(default_factory=lambda: dict.fromkeys(ACTORS, dvv.EMPTY))
    # The set oracle: every write id ever merged into each replica's clock.
    seen: dict[bytes, frozenset[int]] = field(
        default_factory=lambda: dict.fromkeys(ACTORS, frozenset())
    )
    # Each client's context: (version vector, set of write ids it saw).
    clients: list[tuple[dvv.VV, frozenset[int]]] = field(
        default_factory=lambda: [((), frozenset())] * NCLIENTS
    )
    writes: dict[int, Write] = field(default_factory=dict)

    # -- operations --

    def read(self, client: int, replica: bytes) -> None:
        self.clients[client] = (dvv.join(self.clocks[replica]), self.seen[replica])

    def write(self, client: int | None, replica: bytes) -> int:
        ctx, ctx_set = self.clients[client] if client is not None else ((), frozenset())
        wid = len(self.writes)
        before = self.clocks[replica]
        after = dvv.update(dvv.new_with_context(ctx, wid), before, replica)
        dots = [(a, n) for a, n, v in dvv.dotted_values(after) if v == wid]
        assert len(dots) == 1, "a new write appears exactly once"
        dot = dots[0]
        assert dot[0] == replica, "the coordinator stamps the write"
        # The new event is one past everything the replica or the context had seen.
        prev = max(dict(dvv.join(before)).get(replica, 0), dict(ctx).get(replica, 0))
        assert dot[1] == prev + 1
        self.clocks[replica] = after
        self.seen[replica] = self.seen[replica] | ctx_set | {wid}
        self.writes[wid] = Write(wid, replica, dot, dict(ctx), ctx_set)
        return wid

    def sync(self, dst: bytes, src: bytes) -> None:
        self.clocks[dst] = dvv.sync(self.clocks[dst], self.clocks[src])
        self.seen[dst] = self.seen[dst] | self.seen[src]

    def sync_everything(self) -> None:
        merged = dvv.sync_all(list(self.clocks.values()))
        everything = frozenset().union(*self.seen.values())
        for r in ACTORS:
            self.clocks[r] = merged
            self.seen[r] = everything

    def run(self, program: list[tuple]) -> None:
        for step in program:
            if step[0] == "read":
                self.read(step[1], step[2])
            elif step[0] == "write":
                self.write(step[1], step[2])
            else:
                self.sync(step[1], step[2])

    # -- oracles --

    def covered_vv(self, w: int, by: int) -> bool:
        """`w` is covered by `by`'s context according to the version vector."""
        actor, counter = self.writes[w].dot
        return self.writes[by].ctx_vv.get(actor, 0) >= counter

    def covered_set(self, w: int, by: int) -> bool:
        return w in self.writes[by].ctx_set

    def expected_live(self, history: frozenset[int]) -> set[int]:
        """Writes in `history` not overwritten by any other write in `history`."""
        return {w for w in history if not any(self.covered_set(w, o) for o in history if o != w)}


replica_st = st.sampled_from(ACTORS)
client_st = st.integers(0, NCLIENTS - 1)
step_st = st.one_of(
    st.tuples(st.just("read"), client_st, replica_st),
    st.tuples(st.just("write"), st.one_of(st.none(), client_st), replica_st),
    st.tuples(st.just("sync"), replica_st, replica_st),
)
program_st = st.lists(step_st, max_size=40)


def run_model(program: list[tuple]) -> Model:
    m = Model()
    m.run(program)
    return m


@st.composite
def model_clocks(draw, n: int = 1) -> list[dvv.Clock]:
    """`n` clocks taken from the replicas of one model run (a consistent universe)."""
    m = run_model(draw(program_st))
    return [m.clocks[draw(replica_st)] for _ in range(n)]


def msort(vals) -> Counter:
    return Counter(vals)


# --- against the causal-history oracle ------------------------------------------------


@SETTINGS
@given(program_st)
def test_replicas_match_causal_history_oracle(program):
    m = Model()
    for step in program:
        m.run([step])
        for r in ACTORS:
            c = m.clocks[r]
            vals = dvv.values(c)
            assert len(vals) == len(set(vals)), "no duplicate siblings"
            assert set(vals) == m.expected_live(m.seen[r])
            assert dvv.size(c) == len(vals)
            # The join summarises exactly the replica's causal history.
            vv = dict(dvv.join(c))
            expect: dict[bytes, int] = {}
            for w in m.seen[r]:
                a, n = m.writes[w].dot
                expect[a] = max(expect.get(a, 0), n)
            assert {a: n for a, n in vv.items() if n} == expect
            # Every live value carries the dot it was stamped with.
            for a, n, v in dvv.dotted_values(c):
                assert m.writes[v].dot == (a, n)


@SETTINGS
@given(program_st)
def test_vv_oracle_agrees_with_set_oracle(program):
    m = run_model(program)
    for w in m.writes:
        for o in m.writes:
            assert m.covered_vv(w, o) == m.covered_set(w, o)


@SETTINGS
@given(program_st)
def test_after_full_sync_live_values_are_exactly_the_uncovered_writes(program):
    m = run_model(program)
    m.sync_everything()
    # Pure version-vector oracle over every acknowledged write.
    expected = {
        w for w in m.writes if not any(m.covered_vv(w, o) for o in m.writes if o != w)
    }
    assert expected == m.expected_live(frozenset(m.writes))
    for r in ACTORS:
        vals = dvv.values(m.clocks[r])
        assert sorted(vals) == sorted(expected)
    # Syncing pairwise in any order reaches the same state.
    m2 = run_model(program)
    for dst, src in [(b"A", b"B"), (b"B", b"C"), (b"C", b"A"), (b"A", b"B"), (b"B", b"C")]:
        m2.sync(dst, src)
    for r in ACTORS:
        assert set(dvv.values(m2.clocks[r])) == expected
        assert dvv.join(m2.clocks[r]) == dvv.join(m.clocks[r])


@SETTINGS
@given(program_st, replica_st, replica_st, st.sampled_from(ACTORS))
def test_concurrent_writes_become_siblings_and_a_covering_write_resolves_them(
    program, x, y, z
):
    m = run_model(program)
    m.read(0, x)
    m.read(1, x)
    w1 = m.write(0, x)
    other = next(a for a in ACTORS if a != x)
    w2 = m.write(1, other)  # same context, different actor: concurrent
    m.sync_everything()
    vals = dvv.values(m.clocks[y])
    assert w1 in vals and w2 in vals
    # A client that read the merged state overwrites both.
    m.read(2, y)
    w3 = m.write(2, z)
    m.sync_everything()
    assert dvv.values(m.clocks[y]) == [w3]


@SETTINGS
@given(program_st, replica_st)
def test_concurrent_writes_with_same_context_at_distinct_actors(program, x):
    """Two clients sharing one context write at two different replicas."""
    m = run_model(program)
    m.read(0, x)
    m.read(1, x)
    a, b = [r for r in ACTORS if r != x][:2]
    w1 = m.write(0, a)
    w2 = m.write(1, b)
    merged = dvv.sync(m.clocks[a], m.clocks[b])
    assert {w1, w2} <= set(dvv.values(merged))
    # Neither clock is causally before the other.
    assert not dvv.less(m.clocks[a], m.clocks[b])
    assert not dvv.less(m.clocks[b], m.clocks[a])
    # Writing with a context that is the join of both leaves exactly one value.
    ctx = dvv.join(merged)
    final = dvv.update(dvv.new_with_context(ctx, "final"), merged, x)
    assert dvv.values(final) == ["final"]


# --- sync algebra ---------------------------------------------------------------------


def same(c1: dvv.Clock, c2: dvv.Clock) -> None:
    assert msort(dvv.values(c1)) == msort(dvv.values(c2))
    assert dvv.join(c1) == dvv.join(c2)


@SETTINGS
@given(model_clocks(2))
def test_sync_commutative(cs):
    c1, c2 = cs
    same(dvv.sync(c1, c2), dvv.sync(c2, c1))


@SETTINGS
@given(model_clocks(3))
def test_sync_associative(cs):
    c1, c2, c3 = cs
    same(dvv.sync(dvv.sync(c1, c2), c3), dvv.sync(c1, dvv.sync(c2, c3)))
    same(dvv.sync_all([c1, c2, c3]), dvv.sync_all([c3, c1, c2]))


@SETTINGS
@given(model_clocks(1))
def test_sync_idempotent_and_empty_identity(cs):
    (c,) = cs
    assert dvv.sync(c, c) == c
    copy = (tuple((a, n, tuple(v)) for a, n, v in c[0]), tuple(c[1]))
    assert dvv.sync(c, copy) == c
    assert dvv.sync(c, dvv.EMPTY) == c
    assert dvv.sync(dvv.EMPTY, c) == c
    assert dvv.sync_all([]) == dvv.EMPTY


@SETTINGS
@given(
    st.lists(st.integers(0, 5), max_size=4, unique=True),
    st.lists(st.integers(0, 5), max_size=4, unique=True),
    model_clocks(1),
)
def test_sync_with_anonymous_values(a1, a2, cs):
    (c,) = cs
    n1, n2 = dvv.new(a1), dvv.new(a2)
    # Two anonymous clocks with the same (empty) past: both sets survive, no duplicates.
    s = dvv.sync(n1, n2)
    assert set(dvv.values(s)) == set(a1) | set(a2)
    assert len(dvv.values(s)) == len(set(a1) | set(a2))
    assert msort(dvv.values(s)) == msort(dvv.values(dvv.sync(n2, n1)))
    # A clock with a causal past dominates values with none.
    if c[0]:
        same(dvv.sync(n1, c), c)
        same(dvv.sync(c, n1), c)


@SETTINGS
@given(model_clocks(2))
def test_covers_is_the_partial_order_of_version_vectors(cs):
    c1, c2 = cs
    v1, v2, both = dvv.join(c1), dvv.join(c2), dvv.join(dvv.sync(c1, c2))
    assert dvv.covers(both, v1) and dvv.covers(both, v2) and dvv.covers(v1, v1)
    assert dvv.covers(v1, ())
    if dvv.covers(v1, v2) and dvv.covers(v2, v1):
        assert dict(v1) == dict(v2)


# --- less -----------------------------------------------------------------------------


def vv_le(v1: dvv.VV, v2: dvv.VV) -> bool:
    d2 = dict(v2)
    return all(n <= d2.get(a, 0) for a, n in v1)


@SETTINGS
@given(model_clocks(3))
def test_less_is_strict_partial_order_consistent_with_join(cs):
    for c1 in cs:
        assert not dvv.less(c1, c1)
        for c2 in cs:
            v1, v2 = dvv.join(c1), dvv.join(c2)
            expected = vv_le(v1, v2) and v1 != v2
            assert dvv.less(c1, c2) == expected
            if dvv.less(c1, c2):
                assert not dvv.less(c2, c1)
            assert dvv.equal(c1, c2) == (v1 == v2)
            for c3 in cs:
                if dvv.less(c1, c2) and dvv.less(c2, c3):
                    assert dvv.less(c1, c3)


vv_st = st.dictionaries(
    st.binary(min_size=1, max_size=8), st.integers(1, 2**40), max_size=6
).map(lambda d: tuple(sorted(d.items())))


def vv_clock(vv: dvv.VV) -> dvv.Clock:
    return (tuple((a, n, ()) for a, n in vv), ())


@SETTINGS
@given(vv_st, vv_st)
def test_less_on_arbitrary_version_vectors(v1, v2):
    c1, c2 = vv_clock(v1), vv_clock(v2)
    assert dvv.less(c1, c2) == (vv_le(v1, v2) and v1 != v2)
    merged = dvv.sync(c1, c2)
    both = dict(v1)
    for a, n in v2:
        both[a] = max(both.get(a, 0), n)
    assert dvv.join(merged) == tuple(sorted(both.items()))


# --- context tokens -------------------------------------------------------------------

PRINTABLE = set(range(0x21, 0x7F))
vv0_st = st.dictionaries(
    st.binary(min_size=0, max_size=12), st.integers(0, 2**63), max_size=8
).map(lambda d: tuple(sorted(d.items())))


@SETTINGS
@given(vv0_st)
def test_context_token_round_trip(vv):
    token = dvv.encode_vv(vv)
    assert isinstance(token, bytes)
    assert set(token) <= PRINTABLE
    assert dvv.decode_vv(token) == vv
    assert dvv.encode_vv(dvv.decode_vv(token)) == token


def test_empty_context_token():
    assert dvv.encode_vv(()) == b""
    assert dvv.decode_vv(b"") == ()


def check_garbage(token: bytes) -> None:
    """A token either decodes to a well-formed VV or raises BadContext."""
    try:
        vv = dvv.decode_vv(token)
    except dvv.BadContext:
        return
    assert isinstance(vv, tuple)
    actors = [a for a, _ in vv]
    assert actors == sorted(set(actors))
    for a, n in vv:
        assert type(a) is bytes
        assert type(n) is int and n >= 0


@SETTINGS
@given(st.binary(max_size=64))
def test_garbage_bytes_raise_bad_context_only(token):
    check_garbage(token)


@SETTINGS
@given(st.text(alphabet=string.ascii_letters + string.digits + "-_=+/ ", max_size=64))
def test_garbage_base64ish_tokens_raise_bad_context_only(text):
    check_garbage(text.encode())


msgpack_any = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=4)
    | st.binary(max_size=4),
    lambda inner: st.lists(inner, max_size=4),
    max_leaves=12,
)


def tok(data) -> bytes:
    return base64.urlsafe_b64encode(msgpack.packb(data, use_bin_type=True)).rstrip(b"=")


@SETTINGS
@given(msgpack_any)
def test_wellformed_msgpack_of_any_shape_raises_bad_context_only(data):
    check_garbage(tok(data))


@pytest.mark.parametrize(
    "data",
    [
        5,
        "abc",
        [[1, 2]],  # integer actor
        [[2**40, 1]],  # integer actor that would allocate a huge zero-filled actor id
        [["A", 1]],  # text actor
        [[b"A", b"1"]],  # counter as bytes
        [[b"A", "1"]],  # counter as text
        [[b"A", 1.5]],  # counter as float
        [[b"A", True]],  # counter as bool
        [[b"A", -1]],
        [[b"A", 1], [b"A", 2]],  # duplicate actor
        [[b"A", 1, 2]],
        [[b"A"]],
        [b"A"],
        {"A": 1},
    ],
)
def test_structured_garbage_raises_bad_context(data):
    with pytest.raises(dvv.BadContext):
        dvv.decode_vv(tok(data))


@pytest.mark.parametrize("token", [b"!!!!", b"a", b"\xff\xfe", b"not a token", b"====", b"A" * 7])
def test_malformed_tokens_raise_bad_context(token):
    with pytest.raises(dvv.BadContext):
        dvv.decode_vv(token)


# --- keep_only ------------------------------------------------------------------------


@SETTINGS
@given(model_clocks(1), st.data())
def test_keep_only_keeps_join_and_one_value(cs, data):
    (c,) = cs
    dotted = dvv.dotted_values(c)
    if not dotted:
        return
    actor, counter, value = data.draw(st.sampled_from(dotted))
    latest = dict(dvv.join(c))[actor]
    kept = dvv.keep_only(c, actor, latest - counter)
    assert dvv.join(kept) == dvv.join(c)
    assert dvv.values(kept) == [value]
    # The kept value takes its actor's latest dot.
    assert dvv.dotted_values(kept) == [(actor, latest, value)]
    # It still dominates everything the original clock dominated.
    assert not dvv.less(kept, c) and not dvv.less(c, kept)


@SETTINGS
@given(vv_st, st.lists(st.integers(), min_size=1, max_size=5, unique=True), st.data())
def test_keep_only_anonymous(vv, vals, data):
    c = (tuple((a, n, ()) for a, n in vv), tuple(vals))
    idx = data.draw(st.integers(0, len(vals) - 1))
    kept = dvv.keep_only(c, None, idx)
    assert dvv.join(kept) == vv
    assert dvv.values(kept) == [vals[idx]]


# --- obj ------------------------------------------------------------------------------

sibling_st = st.tuples(
    st.integers(0, 2**63),
    st.integers(0, 2**45),
    st.one_of(st.none(), st.binary(max_size=16)),
)


@st.composite
def objects(draw) -> dvv.Clock:
    actors = draw(st.lists(st.binary(min_size=1, max_size=6), unique=True, max_size=4))
    entries = []
    for a in sorted(actors):
        vals = tuple(draw(st.lists(sibling_st, max_size=3)))
        n = draw(st.integers(len(vals), len(vals) + 5))
        entries.append((a, n, vals))
    anon = tuple(draw(st.lists(sibling_st, max_size=2)))
    return (tuple(entries), anon)


def listify(x):
    if isinstance(x, tuple):
        return [listify(y) for y in x]
    return x


@SETTINGS
@given(objects())
def test_obj_encode_decode_round_trip_and_canonical(o):
    enc = objmod.encode(o)
    assert isinstance(enc, bytes)
    dec = objmod.decode(enc)
    assert dec == o
    assert isinstance(dec, tuple) and isinstance(dec[0], tuple)
    assert objmod.encode(dec) == enc
    # An equal object built differently (lists, fresh bytes) encodes to the same bytes.
    rebuilt = listify(o)
    assert objmod.encode(rebuilt) == enc
    assert objmod.encode(dvv.map_values(lambda s: s, o)) == enc


@SETTINGS
@given(objects(), objects())
def test_obj_encoding_equal_iff_objects_equal(o1, o2):
    assert (objmod.encode(o1) == objmod.encode(o2)) == (o1 == o2)


@SETTINGS
@given(objects())
def test_winner_is_highest_ts_then_highest_actor(o):
    w = objmod.winner(o)
    dotted = [(s[0], a or b"", s) for a, _, s in dvv.dotted_values(o)]
    if not dotted:
        assert w is None
        return
    assert w is not None
    sib, actor, idx = w
    best = max((ts, a) for ts, a, _ in dotted)
    assert (sib[0], actor or b"") == best
    if actor is None:
        assert o[1][idx] == sib
    else:
        assert dict((a, v) for a, _, v in o[0])[actor][idx] == sib


def test_winner_examples():
    o = (((b"A", 2, ((5, 0, b"a"),)), (b"B", 1, ((5, 0, b"b"),))), ((9, 0, b"anon"),))
    assert objmod.winner(o) == ((9, 0, b"anon"), None, 0)
    o = (((b"A", 2, ((5, 0, b"a"),)), (b"B", 1, ((5, 0, b"b"),))), ((5, 0, b"anon"),))
    assert objmod.winner(o) == ((5, 0, b"b"), b"B", 0)
    o = (((b"A", 3, ((4, 0, b"a2"), (7, 0, b"a1"))), (b"B", 1, ((6, 0, b"b"),))), ())
    assert objmod.winner(o) == ((7, 0, b"a1"), b"A", 1)
    assert objmod.winner(dvv.EMPTY) is None


@SETTINGS
@given(objects(), st.integers(0, 2**45))
def test_read_value_treats_tombstones_and_expired_as_absent(o, now):
    w = objmod.winner(o)
    got = objmod.read_value(o, now)
    if w is None:
        assert got is None
        return
    ts, exp, data = w[0]
    if data is None or (exp != 0 and exp < now):
        assert got is None
    elif exp == 0 or exp > now:
        assert got == w[0]
    live = objmod.live_siblings(o, now)
    assert all(s[2] is not None and (s[1] == 0 or s[1] > now) for s in live)
    assert [s[0] for s in live] == sorted((s[0] for s in live), reverse=True)
    assert objmod.is_dead(o, now) == (not live)
    if got is not None:
        assert got in live


def test_read_value_examples():
    now = 1000
    assert objmod.read_value(None, now) is None
    live = objmod.sibling(10, b"v")
    tomb = objmod.sibling(20, None)
    expired = objmod.sibling(30, b"old", expire_at=now - 1)
    future = objmod.sibling(40, b"new", expire_at=now + 1)
    assert objmod.read_value(((), (live,)), now) == live
    # A newer tombstone hides the older value.
    assert objmod.read_value((((b"A", 2, (tomb, live)),), ()), now) is None
    # A newer expired value hides too.
    assert objmod.read_value((((b"A", 2, (expired, live)),), ()), now) is None
    assert objmod.read_value((((b"A", 2, (future, expired)),), ()), now) == future
    assert objmod.live_siblings((((b"A", 3, (tomb, expired, live)),), ()), now) == [live]
    assert objmod.is_dead((((b"A", 2, (tomb, expired)),), ()), now)


def _grown(actors: int, each: int) -> Clock:
    """An object of `actors` * `each` concurrent siblings (dotted, as replicas hold)."""
    return (tuple((b"A%03d" % a, each, tuple((a * 1000 + k, 0, b"x") for k in range(each)))
                  for a in range(actors)), ())


@SETTINGS
@given(st.integers(0, 4), st.integers(0, 60), st.data())
def test_only_a_write_that_grows_a_key_past_the_sibling_cap_is_refused(actors, each, data):
    held = _grown(actors, each) if actors and each else None
    vv = dvv.join(held) if held is not None else ()
    # A context covering any prefix of the actors: the rest stay as siblings.
    covered = data.draw(st.integers(0, len(vv)))
    new = dvv.update(dvv.new_with_context(vv[:covered], (1, 0, b"new")), held, b"Z")
    size = dvv.size(new)
    before = dvv.size(held) if held is not None else 0
    assert objmod.too_many_siblings(new, held) == (size > objmod.SIBLING_MAX and size > before)
    # A plain write (overwrite) and a write covering everything are never refused.
    assert not objmod.too_many_siblings(dvv.overwrite(held, b"Z", (1, 0, b"v")), held)
    full = dvv.update(dvv.new_with_context(vv, (1, 0, b"v")), held, b"Z")
    assert dvv.size(full) == 1 and not objmod.too_many_siblings(full, held)


# --- context size -----------------------------------------------------------------------


def test_the_largest_context_a_key_could_have_fits_the_limit():
    """2,000 writers (12-byte actors: an 8-byte node identity and a 4-byte life) with
    counters near 2**64: far more than any key's clock, and still under the limit."""
    vv = tuple(sorted((i.to_bytes(12, "big"), 2**64 - 1 - i) for i in range(2000)))
    token = dvv.encode_vv(vv)
    assert len(token) <= dvv.MAX_CONTEXT_BYTES
    assert dvv.decode_vv(token) == vv


def test_a_context_longer_than_the_limit_is_refused_before_it_is_decoded(monkeypatch):
    vv = tuple(sorted((i.to_bytes(12, "big"), i) for i in range(5000)))
    token = dvv.encode_vv(vv)
    assert len(token) > dvv.MAX_CONTEXT_BYTES

    def never(*args, **kwargs):
        raise AssertionError("an oversized context was decoded")

    monkeypatch.setattr(dvv.base64, "urlsafe_b64decode", never)
    with pytest.raises(dvv.ContextTooLong):
        dvv.decode_vv(token)
    # Not even its first bytes are looked at: any oversized token is refused so.
    with pytest.raises(dvv.ContextTooLong):
        dvv.decode_vv(b"!" * (dvv.MAX_CONTEXT_BYTES + 1))
    assert issubclass(dvv.ContextTooLong, dvv.BadContext)
