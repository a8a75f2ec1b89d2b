"""Keyspace walks (cluster/keyscan.py) in a simulated 5-node cluster with N=3: SCAN, KEYS,
DBSIZE and RANDOMKEY, cluster-wide and per owner, across nodes and around failures."""

from __future__ import annotations

from typing import Any

import pytest

from dynredis.cluster.keyscan import KeyScan
from dynredis.commands.databases import MARK, storage_key
from dynredis.core.node import Config
from tests.sim.harness import SimCluster

KEYS = [b"k:%d" % i for i in range(300)] + [b"{tag}%d" % i for i in range(20)] + [b""]


def make(n_nodes: int = 5, n: int = 3, q: int = 32, seed: int = 7) -> tuple[SimCluster,
                                                                            dict[str, KeyScan]]:
    sim = SimCluster(n_nodes, seed=seed, config=Config(n=n, r=min(2, n), w=min(2, n), q=q))
    scans = {name: KeyScan(node) for name, node in sim.nodes.items()}
    return sim, scans


def load(sim: SimCluster, keys: list[bytes] = KEYS) -> None:
    for i, key in enumerate(keys):
        assert sim.put(sim.names[i % len(sim.names)], key, b"v")[0] is None
    sim.run(100)  # every replica has every write


def call(sim: SimCluster, scans: dict[str, KeyScan], via: str, op: str, *args: Any,
         wait_ms: int = 10_000, **kw: Any) -> tuple[str | None, Any]:
    """Run one KeyScan operation on node `via`, ticking it, until its callback fires."""
    box: list = []
    assert sim.on_node(via, lambda node: getattr(scans[via], op)(*args, box.append, **kw),
                       catch=False)
    waited = 0
    while not box and waited < wait_ms:
        sim.run(5)
        sim.on_node(via, lambda node: scans[via].tick())
        waited += 5
    assert box, f"{op} through {via} got no answer in {wait_ms} ms"
    return box[0]


def full_scan(sim: SimCluster, scans: dict[str, KeyScan], vias: list[str], count: int = 10,
              match: bytes | None = None, own: bool = False) -> tuple[list[bytes], int]:
    """SCAN to the end, each step through the next node of `vias` (cursor handed over)."""
    cursor, keys, steps = 0, [], 0
    while True:
        err, result = call(sim, scans, vias[steps % len(vias)], "scan", cursor, count, match,
                           True, own)
        assert err is None, err
        cursor, batch = result
        keys.extend(batch)
        steps += 1
        assert steps < 10_000
        if cursor == 0:
            return keys, steps


def test_cluster_wide_scan_reports_every_key_once_from_any_node() -> None:
    sim, scans = make()
    load(sim)
    for via in sim.names:
        keys, steps = full_scan(sim, scans, [via], count=25)
        assert sorted(keys) == sorted(KEYS), via
        assert steps > 1


def test_scan_cursor_can_be_continued_on_other_nodes() -> None:
    sim, scans = make()
    load(sim)
    keys, steps = full_scan(sim, scans, sim.names, count=7)
    assert sorted(keys) == sorted(KEYS)
    assert steps >= len(KEYS) // 7 // 2


def test_scan_match_count_and_type() -> None:
    sim, scans = make()
    load(sim)
    keys, _ = full_scan(sim, scans, sim.names[:2], count=50, match=b"{tag}*")
    assert sorted(keys) == sorted(k for k in KEYS if k.startswith(b"{tag}"))
    # A huge COUNT walks everything in one call.
    err, (cursor, keys) = call(sim, scans, sim.names[0], "scan", 0, 1_000_000, None, True, False)
    assert err is None and cursor == 0 and sorted(keys) == sorted(KEYS)
    # TYPE of a type no key has: the cursor still moves, no key comes back.
    err, (cursor, keys) = call(sim, scans, sim.names[0], "scan", 0, 1_000_000, None, False, False)
    assert err is None and cursor == 0 and keys == []
    # A cursor past the end of the keyspace ends the scan.
    err, (cursor, keys) = call(sim, scans, sim.names[0], "scan", 2**64 - 1, 10, None, True, False)
    assert (err, cursor, keys) == (None, 0, [])


def test_keys_dbsize_randomkey_cluster_wide() -> None:
    sim, scans = make()
    err, key = call(sim, scans, sim.names[0], "randomkey", False)
    assert (err, key) == (None, None)
    load(sim)
    for via in sim.names:
        err, keys = call(sim, scans, via, "keys", b"k:1?", False)
        assert err is None and sorted(keys) == sorted(b"k:1%d" % i for i in range(10))
        err, keys = call(sim, scans, via, "keys", b"*", False)
        assert err is None and sorted(keys) == sorted(KEYS)
        assert call(sim, scans, via, "dbsize", False) == (None, len(KEYS))
        err, key = call(sim, scans, via, "randomkey", False)
        assert err is None and key in KEYS


def test_own_view_covers_owned_partitions_and_adds_up() -> None:
    sim, scans = make()
    load(sim)
    total = 0
    every: list[bytes] = []
    for via in sim.names:
        node = sim.nodes[via]
        err, n = call(sim, scans, via, "dbsize", True)
        assert err is None
        total += n
        keys, _ = full_scan(sim, scans, [via], count=10, own=True)
        owned = set(node.owned_partitions())
        assert all(node.ring.partition_of(k) in owned for k in keys)
        assert len(keys) == n
        err, listed = call(sim, scans, via, "keys", b"*", True)
        assert sorted(listed) == sorted(keys)
        every.extend(keys)
    assert total == len(KEYS)
    assert sorted(every) == sorted(KEYS)


def test_deleted_and_expired_keys_are_not_reported() -> None:
    sim, scans = make()
    load(sim)
    via = sim.names[0]
    now = sim.nodes[via].now
    assert sim.put(via, b"k:1", None)[0] is None  # a tombstone
    assert sim.put(via, b"k:2", b"v", expire_at=now + 50)[0] is None
    sim.run(200)
    gone = {b"k:1", b"k:2"}
    keys, _ = full_scan(sim, scans, sim.names, count=40)
    assert sorted(keys) == sorted(set(KEYS) - gone)
    assert call(sim, scans, via, "dbsize", False) == (None, len(KEYS) - 2)
    err, keys = call(sim, scans, via, "keys", b"k:?", False)
    assert sorted(keys) == sorted(b"k:%d" % i for i in range(10) if i not in (1, 2))


@pytest.mark.parametrize("op", ["scan", "keys", "dbsize"])
def test_an_unresponsive_replica_is_replaced_after_the_timeout(op: str) -> None:
    sim, scans = make()
    load(sim)
    via, frozen = sim.names[0], sim.names[2]
    sim.stop(frozen)  # frozen: no answers, but links stay up (nobody sees it down yet)
    start = sim.now
    if op == "scan":
        err, (cursor, keys) = call(sim, scans, via, "scan", 0, 10**6, None, True, False)
        assert err is None and cursor == 0 and sorted(keys) == sorted(KEYS)
    elif op == "keys":
        err, keys = call(sim, scans, via, "keys", b"*", False)
        assert err is None and sorted(keys) == sorted(KEYS)
    else:
        assert call(sim, scans, via, "dbsize", False) == (None, len(KEYS))
    # It was asked first, and replaced only once the request timed out.
    assert sim.now - start >= sim.nodes[via].cfg.timeout_ms


def test_no_reachable_replica_is_an_error() -> None:
    sim, scans = make(n_nodes=2, n=1, q=8)
    load(sim, KEYS[:20])
    sim.stop(sim.names[1])
    err, _ = call(sim, scans, sim.names[0], "dbsize", False)
    assert err is not None and err.startswith("NOQUORUM keyspace walk")


def test_walks_cover_one_numbered_database_and_name_its_keys_as_it_does() -> None:
    sim, scans = make()
    zero = [b"z:%d" % i for i in range(40)] + [MARK + b"\x03escaped"]
    three = [b"t:%d" % i for i in range(25)] + [b"z:1"]
    load(sim, [storage_key(0, k) for k in zero] + [storage_key(3, k) for k in three])
    for via in sim.names[:2]:
        for db, keys in ((0, zero), (3, three), (7, [])):
            err, listed = call(sim, scans, via, "keys", b"*", False, db=db)
            assert err is None and sorted(listed) == sorted(keys), db
            assert call(sim, scans, via, "dbsize", False, db=db) == (None, len(keys))
            err, key = call(sim, scans, via, "randomkey", False, db=db)
            assert err is None and (key in keys if keys else key is None)
            cursor, scanned = 0, []
            while True:
                err, (cursor, batch) = call(sim, scans, via, "scan", cursor, 5, b"*:1*", True,
                                            False, db=db)
                scanned.extend(batch)
                if cursor == 0:
                    break
            assert sorted(scanned) == sorted(k for k in keys if k[1:3] == b":1"), db
        err, figures = call(sim, scans, via, "keyspace", False)
        assert err is None and {db: f[0] for db, f in figures.items()} == \
            {0: len(zero), 3: len(three)}

def test_counts_asked_while_one_is_in_flight_share_its_walk() -> None:
    """500 INFO (or DBSIZE) in one write walked every key of every node 500 times,
    freezing the nodes: asked while a count of the same view is in flight, the answer
    is that count's, and one walk is made. A count asked after it ends walks again."""
    sim, scans = make()
    load(sim)
    via = sim.names[0]
    boxes: list[list] = [[] for _ in range(500)]
    queries: list[tuple] = []
    for node in sim.nodes.values():  # every keyspace query a node receives
        def counting(src: str, msg: tuple, handle: Any = node.handlers["kq"]) -> None:
            queries.append(msg)
            handle(src, msg)
        node.handlers["kq"] = counting

    def ask(node: Any) -> None:
        for box in boxes[:-1]:
            scans[via].dbsize(False, box.append)
        scans[via].keyspace(True, boxes[-1].append)  # another view: its own walk

    assert sim.on_node(via, ask, catch=False)
    sim.run(200)
    assert [box for box in boxes[:-1] if box != [(None, len(KEYS))]] == []
    assert boxes[-1] and boxes[-1][0][0] is None
    assert 0 < len(queries) <= 2 * len(sim.names)  # one walk per view, not 500
    assert call(sim, scans, via, "dbsize", False) == (None, len(KEYS))


def test_local_walks_run_a_slice_at_a_time_between_other_requests(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """KEYS, DBSIZE and INFO keyspace walk every key a node holds: in one turn a
    DBSIZE over 100,000 keys froze a node for 350 ms. Given a `wake`, a node reads at
    most WALK_SLICE keys per `step()`, answers once the walk ends, and serves other
    requests in between; keys present throughout are each reported once. (DBSIZE walks
    only when the store's counts cannot say: a clock stepped back.)"""
    monkeypatch.setattr("dynredis.cluster.keyscan.WALK_SLICE", 16)
    sim = SimCluster(3, seed=11, config=Config(n=3, r=2, w=2, q=32))
    woken: list[str] = []
    scans = {name: KeyScan(node, wake=lambda name=name: woken.append(name))
             for name, node in sim.nodes.items()}
    load(sim)
    for node in sim.nodes.values():  # counts asked about a later moment: they cannot say
        for dbs in node.local.counts.tallies.values():
            for tally in dbs.values():
                tally.mark = 2**62
    via = sim.names[0]
    for op, args, want in (("dbsize", (False,), len(KEYS)),
                           ("keys", (b"*", False), sorted(KEYS))):
        box: list = []
        woken.clear()
        ask = getattr(scans[via], op)
        assert sim.on_node(via, lambda node, ask=ask, args=args, box=box: ask(*args, box.append),
                           catch=False)
        assert woken == [via] and box == []  # nothing walked yet: the driver steps it
        steps = 0
        while not box:
            # Another client's write between slices completes meanwhile.
            if steps == 2:
                assert sim.put(sim.names[1], b"late:%d" % len(woken), b"v")[0] is None
            assert sim.on_node(via, lambda node: scans[via].step(), catch=False)
            steps += 1
            sim.run(5)
            assert steps < 1000
        err, got = box[0]
        assert err is None
        if op == "keys":
            assert sorted(k for k in got if not k.startswith(b"late:")) == want
            assert len(got) == len(set(got))
        else:
            assert got in (want, want + 1)
        assert steps >= len(KEYS) // 16  # a slice of 16 keys per step


def test_a_huge_count_is_capped_and_the_cursor_goes_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """SCAN 0 COUNT 10000000 walked a 100,000-key node in one turn (630 ms): a call
    examines at most SCAN_COUNT_MAX keys, COUNT being a hint; the cursor goes on and
    the scan still reports every key once."""
    monkeypatch.setattr("dynredis.cluster.keyscan.SCAN_COUNT_MAX", 50)
    sim, scans = make()
    load(sim)
    err, (cursor, keys) = call(sim, scans, sim.names[0], "scan", 0, 1_000_000, None, True, False)
    assert err is None and cursor != 0 and 0 < len(keys) < len(KEYS)
    keys, steps = full_scan(sim, scans, sim.names, count=1_000_000)
    assert sorted(keys) == sorted(KEYS) and steps >= len(KEYS) // 100




def test_a_walk_visits_only_the_buckets_that_list_keys() -> None:
    """A SCAN 0 COUNT 1000000000 of ~700 keys visited every bucket of every partition
    in one call (1,024 each, most empty: 66 ms on a 3-node cluster). A walk now steps
    from one bucket that lists keys to the next: a sparse keyspace is walked whole in
    one call, in as many visits as it has buckets with keys, and the cursor of a
    call stopped by COUNT still goes on from the next bucket."""
    sim, scans = make()
    few = KEYS[:40]
    load(sim, few)
    me = sim.names[0]
    scan = scans[me]
    parts = scan.partitions(True)
    keys, finished, _, examined, visited, _ = scan.walk(parts, 0, 10**9, 10**12, None)
    held = sorted(k for k in few if sim.nodes[me].partition(k) in parts)
    assert sorted(keys) == held and finished == len(parts) and examined == len(held)
    assert visited <= len(held) + len(parts) < scan.segments
    err, (cursor, got) = call(sim, scans, me, "scan", 0, 10**9, None, True, False)
    assert err is None and cursor == 0 and sorted(got) == sorted(few)
    keys, steps = full_scan(sim, scans, sim.names, count=3)
    assert sorted(keys) == sorted(few) and steps >= len(few) // 3



@pytest.mark.parametrize("sparse", [4, 10**6])  # the walk by listed buckets; every bucket
def test_both_walks_report_every_key_once(sparse: int, monkeypatch: pytest.MonkeyPatch
                                          ) -> None:
    monkeypatch.setattr("dynredis.cluster.keyscan.SPARSE", sparse)
    sim, scans = make()
    load(sim)
    for count in (1, 7, 10**6):
        keys, _ = full_scan(sim, scans, sim.names, count=count)
        assert sorted(keys) == sorted(KEYS)

def test_a_scan_reads_a_bounded_number_of_stored_keys_a_call(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """SCAN 0 COUNT 1000000000 in a database holding one key of 1.1 million read every
    other database's key in one turn (the keys examined, which bound a call, are the
    database's own): a call reads at most SCAN_READ_MAX stored keys (to the end of a
    bucket) and answers the cursor to go on from; the scan still reports each key once."""
    monkeypatch.setattr("dynredis.cluster.keyscan.SCAN_READ_MAX", 20)
    sim, scans = make()
    three = [b"t:%d" % i for i in range(100)]  # in (almost) every partition
    load(sim, KEYS + [storage_key(3, k) for k in three])
    via = sim.names[0]
    err, (cursor, keys) = call(sim, scans, via, "scan", 0, 10**9, None, True, False, db=3)
    assert err is None and cursor != 0
    cursor, found, steps = 0, [], 0
    while True:
        err, (cursor, batch) = call(sim, scans, sim.names[steps % 5], "scan", cursor, 10**9,
                                    None, True, False, db=3)
        assert err is None
        found.extend(batch)
        steps += 1
        if cursor == 0:
            break
    assert sorted(found) == sorted(three)
    assert steps >= (len(KEYS) + len(three)) // 20 // 4


def test_expired_keys_count_toward_count() -> None:
    """As Redis' COUNT counts the expired keys its walk meets: a SCAN of keys almost all
    expired read every head it met in one call until COUNT live ones came (its budget
    of buckets aside), each an engine read."""
    sim, scans = make()
    via = sim.names[0]
    now = sim.nodes[via].now
    for i, key in enumerate(KEYS):
        assert sim.put(sim.names[i % 5], key, b"v", expire_at=now + 50)[0] is None
    alive = [b"alive:%d" % i for i in range(40)]
    for key in alive:
        assert sim.put(via, key, b"v")[0] is None
    sim.run(200)
    keys, steps = full_scan(sim, scans, sim.names, count=5)
    assert sorted(keys) == sorted(alive)
    assert steps >= len(KEYS) // 5 // 2


def test_a_database_without_keys_is_walked_without_reading_any() -> None:
    """The store's counts say which partitions hold no live key of a database: SCAN,
    KEYS and RANDOMKEY of an empty database (every key another's) read no stored key, and
    SCAN answers cursor 0 at once, as Redis does for an empty database (it answered a
    cursor to go on from, and RANDOMKEY walked every key: 1.1 million took a second of
    a node's loop)."""
    sim = SimCluster(3, seed=11, config=Config(n=3, r=2, w=2, q=32))
    woken: list[str] = []
    scans = {name: KeyScan(node, wake=lambda name=name: woken.append(name))
             for name, node in sim.nodes.items()}
    load(sim)
    for via in sim.names:
        assert call(sim, scans, via, "scan", 0, 1, None, True, False, db=7) == (None, (0, []))
        assert call(sim, scans, via, "randomkey", False, db=7) == (None, None)
    assert woken == []  # no walk was queued


def test_randomkey_falls_back_to_a_walk_a_slice_at_a_time(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """RANDOMKEY samples a few keys; when they are all dead or another database's (a
    database holding few keys among 1.1 million, keys almost all expired) it picks among
    the live ones, which it listed in one turn (~1 s of a node's loop at 1.1 million
    keys). Given a `wake`, the walk reads WALK_SLICE keys a step and the node serves
    other requests meanwhile; a key is still found."""
    monkeypatch.setattr("dynredis.cluster.keyscan.WALK_SLICE", 16)
    sim = SimCluster(3, seed=11, config=Config(n=3, r=2, w=2, q=8))
    woken: list[str] = []
    scans = {name: KeyScan(node, wake=lambda name=name: woken.append(name))
             for name, node in sim.nodes.items()}
    three = [b"t:%d" % i for i in range(5)]
    many = [b"k:%d" % i for i in range(2000)]
    load(sim, many + [storage_key(3, k) for k in three])
    via = sim.names[0]
    box: list = []
    assert sim.on_node(via, lambda node: scans[via].randomkey(False, box.append, db=3),
                       catch=False)
    assert woken == [via] and box == []  # nothing walked yet: the driver steps it
    steps = 0
    while not box:
        if steps == 2:  # another client's write between slices completes meanwhile
            assert sim.put(sim.names[1], b"late", b"v")[0] is None
        assert sim.on_node(via, lambda node: scans[via].step(), catch=False)
        steps += 1
        sim.run(5)
        assert steps < 1000
    err, key = box[0]
    assert err is None and key in three
    assert steps >= 250 // 16  # a partition holding one of them: ~250 keys


def test_scan_type_leaves_a_large_value_unread() -> None:
    """SCAN TYPE tells a large string's type from its shape: the value itself is never
    read out of storage (a 100 MB string was decoded whole by `SCAN 0 TYPE hash`)."""
    sim, scans = make()
    load(sim)
    big = b"k:big"
    assert sim.put(sim.names[0], big, b"x" * (256 << 10))[0] is None
    sim.run(100)
    whole_reads: list[str] = []
    for name, node in sim.nodes.items():
        node.local.cache.clear()
        engine = node.local.engine
        plain_get = engine.get

        def get(p: int, key: bytes, _get: Any = plain_get, _name: str = name) -> Any:
            if key == big:
                whole_reads.append(_name)
            return _get(p, key)

        engine.get = get  # type: ignore[method-assign]
        node.local.rebind()
    for want, has_big in (("hash", False), ("string", True)):
        err, (cursor, keys) = call(sim, scans, sim.names[0], "scan", 0, 1_000_000, None,
                                   want, False)
        assert err is None and cursor == 0
        assert (big in keys) is has_big
        assert len(keys) == (len(KEYS) + 1 if has_big else 0)
    assert whole_reads == []
