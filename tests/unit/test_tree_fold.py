"""The anti-entropy trees take writes a slice at a time (LocalStore.fold_some, every
tick): a partition written many times between its exchanges is never hashed all at
once, which held a node for seconds after a million-element collection was filled."""

from __future__ import annotations

from dynredis.core import clock as dvv
from dynredis.core import obj as objmod
from dynredis.core.localstore import DIRTY_CHUNK, LocalStore
from dynredis.core.records import ELEM_BASE
from dynredis.storage.memory import MemoryEngine


def plain(value: bytes) -> bytes:
    """A plain write's stored object holding `value` (the store reads what each object
    it writes reads as: keycounts.py)."""
    return objmod.encode(dvv.overwrite(None, b"a", (1, 0, value)))


def test_fold_some_hashes_at_most_its_budget_and_ends_with_the_full_tree():
    engine = MemoryEngine()
    local = LocalStore(engine)
    for i in range(2500):
        local.put(3, b"k%d" % i, plain(b"v%d" % i), None)
    for i in range(700):
        local.put(5, b"j%d" % i, plain(b"w%d" % i), None)  # a key lives in one partition
    local.delete(3, b"k7")
    assert local.fold_some(1000) == 1000
    assert sum(len(keys) for keys in local.dirty.values()) == 2500 + 700 - 1000
    while local.fold_some(1000):
        pass
    assert not local.dirty
    rebuilt = LocalStore(engine)  # hashes every stored key at start
    assert local.trees[3].root() == rebuilt.trees[3].root()
    assert local.trees[5].root() == rebuilt.trees[5].root()
    assert len(local.trees[3]) == 2499 and len(local.trees[5]) == 700


def test_a_node_tick_folds_a_slice_of_the_dirty_keys():
    from tests.sim.harness import SimCluster

    sim = SimCluster(3, seed=3)
    node = sim.nodes[sim.names[0]]
    for i in range(5000):
        node.local.put_record(ELEM_BASE + 1, b"r%06d" % i, b"x")
    before = sum(len(k) for k in node.local.dirty.values())
    sim.run(15)  # a tick or two
    after = sum(len(k) for k in node.local.dirty.values())
    assert before >= 5000 and after < before
    sim.run(200)
    assert sum(len(k) for k in node.local.dirty.values()) == 0


def test_a_wipe_gives_the_writes_not_yet_folded_to_the_graveyard():
    """FLUSHALL after walks stripped big collections: millions of keys written and not yet
    folded were freed in the wipe's own turn (66-72 ms for three million). They are
    buried: the store forgets them at once, the graveyard frees them over steps, and
    writes after the wipe fold into trees of only themselves."""
    from dynredis.core.graveyard import SLICE, Graveyard

    local = LocalStore(MemoryEngine())
    for i in range(3 * SLICE):
        local.put_record(ELEM_BASE + 2, b"r%06d" % i, b"x")
    graveyard = Graveyard()
    graveyard.wake = lambda: None
    local.wipe(graveyard.bury)
    assert not local.dirty and not local.older
    # (every key: the full chunk of DIRTY_CHUNK keys and the rest)
    assert sum(map(len, graveyard.graves)) >= 3 * SLICE
    local.put(2, b"k", plain(b"v"), None)
    steps = 1
    while graveyard.step():
        steps += 1
    assert steps >= 2 and len(graveyard) == 0
    assert local.backlog(ELEM_BASE + 2) == 0 and len(local.tree(2)) == 1


def test_a_partition_written_past_a_chunk_folds_its_writes_in_order():
    """A partition's dirty keys go into chunks of DIRTY_CHUNK (no dict grown to a
    million, resized in a write's turn): a key written again or deleted in a later chunk
    ends as its last write says, whether the chunks are folded a slice at a time or all
    at once."""
    n = DIRTY_CHUNK * 2 + 100
    ep = ELEM_BASE + 4
    for fold_all in (False, True):
        engine = MemoryEngine()
        local = LocalStore(engine)
        for i in range(n):
            local.put_record(ep, b"r%06d" % i, b"x")
        for i in range(0, n, 7):
            local.put_record(ep, b"r%06d" % i, b"y")  # a later chunk's fingerprint wins
        for i in range(3, n, 11):
            local.delete_record(ep, b"r%06d" % i)
        # (a key written twice within one chunk counts once)
        assert n < local.backlog(ep) <= n + len(range(0, n, 7)) + len(range(3, n, 11))
        assert max(map(len, local.older[ep])) == DIRTY_CHUNK
        assert len(local.dirty[ep]) < DIRTY_CHUNK
        if fold_all:
            local.tree(ep)
        else:
            while local.fold_some(5000):
                pass
        assert not local.dirty and not local.older and local.backlog(ep) == 0
        rebuilt = LocalStore(engine)
        assert local.trees[ep].root() == rebuilt.trees[ep].root()
        assert len(local.trees[ep]) == n - len(range(3, n, 11))


def test_count_folds_nothing_and_says_what_is_left_to_fold():
    """INFO's local_keys after a walk stripped a big collection folded every dirty key in
    its own turn (a million folds). It counts what the trees hold and the writes not
    folded yet; the ticks' folds make it exact."""
    local = LocalStore(MemoryEngine())
    for i in range(DIRTY_CHUNK + 100):
        local.put_record(ELEM_BASE + 2, b"r%06d" % i, b"x")
    local.put(3, b"k", plain(b"v"), None)
    assert local.fold_some(50) == 50
    assert local.count() == 50
    assert local.unfolded() == DIRTY_CHUNK + 101 - 50  # none folded by the count
    local.delete_record(ELEM_BASE + 2, b"r000000")
    while local.fold_some(1000):
        pass
    assert local.unfolded() == 0 and local.count() == DIRTY_CHUNK + 100


def test_a_wipe_frees_many_small_trees_over_steps_not_in_its_own_turn():
    """FLUSHALL with keys spread over every partition: each tree's entries were under a
    slice, so the graveyard cleared them at once, and all of them together (777k keys a
    node) were freed in the wipe's own turn: 73-117 ms of CPU. They wait their turn:
    the wipe frees none of them, and no step frees more than a slice."""
    from dynredis.core.graveyard import SLICE, Graveyard

    local = LocalStore(MemoryEngine(), cache_size=16)  # (the trees' entries, mostly)
    partitions, per = 64, SLICE // 16  # 4 slices' worth, a sixteenth of one a tree
    for p in range(partitions):
        for i in range(per):
            local.put(p, b"k%d:%d" % (p, i), plain(b"v"), None)
        local.tree(p)  # folded: the entries are the trees'
    held = sum(len(local.trees[p]) for p in range(partitions))
    assert held == partitions * per
    graveyard = Graveyard()
    graveyard.wake = lambda: None
    local.wipe(graveyard.bury)
    assert local.count() == 0
    left = sum(map(len, graveyard.graves))
    assert left >= held  # (and each tree's sums)
    steps = 0
    while graveyard.graves:
        graveyard.step()
        steps += 1
        now = sum(map(len, graveyard.graves))
        assert 0 < left - now <= SLICE
        left = now
    assert steps >= 4


def _held(grave: object) -> int:
    """Objects a grave frees as it empties, counting a list inside a dict by its
    elements (a tree's bucket index: bucket -> its keys)."""
    if isinstance(grave, dict):
        return sum(len(v) if isinstance(v, list) else 1 for v in grave.values())
    return len(grave)  # type: ignore[arg-type]


def test_a_wipe_frees_a_big_trees_bucket_index_a_slice_of_keys_per_step():
    """A partition of a big collection's records, its bucket index built (anti-entropy
    reads buckets): the index is a dict of a thousand buckets' lists of keys, a million
    keys in all. Buried as one dict of a thousand entries, a single step freed them all
    (17 ms in-process; in the wipe's own turn before that: 74 ms for six such trees).
    Its lists go a slice of keys at a time."""
    from dynredis.core.graveyard import SLICE, Graveyard

    local = LocalStore(MemoryEngine(), cache_size=16)
    ep = ELEM_BASE + 9
    for i in range(4 * SLICE):
        local.put_record(ep, b"r%06d" % i, b"x")
    tree = local.tree(ep)
    assert tree.bucket(0)  # (the index is built)
    graveyard = Graveyard()
    graveyard.wake = lambda: None
    local.wipe(graveyard.bury)
    left = sum(map(_held, graveyard.graves))
    assert left >= 2 * 4 * SLICE  # the entries and the index: none freed yet
    bucket = 4 * SLICE // tree.segments * 2  # (a bucket's keys, about)
    while graveyard.graves:
        graveyard.step()
        now = sum(map(_held, graveyard.graves))
        assert 0 < left - now <= SLICE + bucket
        left = now


def test_a_tick_leaves_its_fold_to_steps_of_a_slice_each():
    """A tick folded 2,000 dirty keys in its own loop turn: 1-3 ms every 50 ms on every
    node taking writes, which the coordinator waits through whenever its one other live
    replica is the one folding (a replica down: make bench's failure rows). The tick now
    folds nothing; fold_step hashes a slice of the same share, each in a turn of its own."""
    from dynredis.core.node import FOLD_PER_TICK, FOLD_SLICE
    from tests.sim.harness import SimCluster

    sim = SimCluster(3, seed=3)
    node = sim.nodes[sim.names[0]]
    node.now = sim.node_now(sim.sn[sim.names[0]])
    value = plain(b"v")
    for i in range(3 * FOLD_PER_TICK):
        node.local.put(i % 7, b"k%06d" % i, value, None)
    dirty = node.local.unfolded()
    # (no anti-entropy exchange due in this tick: one folds the partition it compares)
    node.anti_entropy.next_exchange = node.now + 60_000
    node.tick()
    assert node.local.unfolded() == dirty
    steps = []
    more = True
    while more:
        before = node.local.unfolded()
        more = node.fold_step()
        steps.append(before - node.local.unfolded())
    assert max(steps) == FOLD_SLICE and sum(steps) == FOLD_PER_TICK
    assert not node.fold_step() and node.local.unfolded() == dirty - FOLD_PER_TICK


def test_writes_faster_than_a_ticks_share_leave_a_bounded_backlog():
    """Writes arriving faster than FOLD_PER_TICK a tick (a client's HSETs of a thousand
    fields; a walk stripping a deleted collection's records) grew the unfolded backlog
    by the difference every tick for as long as they came (five rounds of a 100,000-field
    HSET and its DEL: 860,000 unfolded, +150 MB). Past FOLD_BACKLOG_FREE a tick's share
    grows with the backlog, so it levels off, and it drains once the writes stop."""
    from dynredis.core.node import (
        FOLD_BACKLOG_FREE,
        FOLD_CATCHUP,
        FOLD_PER_TICK,
        FOLD_SLICE_MAX,
        fold_share,
    )
    from tests.sim.harness import SimCluster

    assert fold_share(0) == fold_share(FOLD_BACKLOG_FREE) == FOLD_PER_TICK
    assert fold_share(FOLD_BACKLOG_FREE + 16 * FOLD_CATCHUP) == FOLD_PER_TICK + 16
    sim = SimCluster(3, seed=3)
    node = sim.nodes[sim.names[0]]
    node.now = sim.node_now(sim.sn[sim.names[0]])
    node.anti_entropy.next_exchange = node.now + 10**9  # (an exchange folds too)
    value = plain(b"v")
    per_tick = 3 * FOLD_PER_TICK
    level = FOLD_BACKLOG_FREE + FOLD_CATCHUP * (per_tick - FOLD_PER_TICK)
    backlog = []
    slices = set()
    n = 0
    for _ in range(70):
        for _ in range(per_tick):
            node.local.put(n % 64, b"k%07d" % n, value, None)
            n += 1
        node.tick()
        more = True
        while more:
            before = node.local.unfolded()
            more = node.fold_step()
            slices.add(before - node.local.unfolded())
        backlog.append(node.local.unfolded())
    # (a share past FOLD_PER_TICK goes in bigger slices: a tick sees few loop turns
    # while clients pipeline big writes)
    assert max(slices) == FOLD_SLICE_MAX
    # (with a share of FOLD_PER_TICK whatever the backlog: 70 x 4,000 = 280,000 and growing)
    assert max(backlog) <= level + per_tick
    assert backlog[-1] - backlog[-11] < FOLD_PER_TICK
    for _ in range(200):
        node.tick()
        while node.fold_step():
            pass
    assert node.local.unfolded() == 0


def test_the_server_folds_a_slice_a_loop_turn_after_its_tick(tmp_path):
    """The server's tick schedules the fold's slices as loop callbacks of their own, so
    that the clients' and peers' reads waiting meanwhile run between them."""
    import asyncio

    from dynredis.core.node import FOLD_PER_TICK, FOLD_SLICE
    from dynredis.server.app import NodeOptions, NodeServer

    async def run() -> list[int]:
        srv = NodeServer(NodeOptions(port=1, data_dir=str(tmp_path), engine="memory"))
        srv.loop = asyncio.get_running_loop()
        srv.set_now()
        local = srv.node.local
        value = plain(b"v")
        for i in range(3 * FOLD_PER_TICK):
            local.put(i % 7, b"k%06d" % i, value, None)
        left = [local.unfolded()]
        srv._tick()
        left.append(local.unfolded())
        for _ in range(FOLD_PER_TICK // FOLD_SLICE + 2):
            await asyncio.sleep(0)  # one loop turn
            left.append(local.unfolded())
        await srv.stop()
        return left

    left = asyncio.run(run())
    assert left[0] == left[1]  # the tick itself folded nothing
    folded = [a - b for a, b in zip(left[:-1], left[1:], strict=True)]
    assert max(folded) <= FOLD_SLICE
    assert left[0] - left[-1] == FOLD_PER_TICK



def test_a_big_partitions_tree_keeps_its_entries_in_maps_that_grow_a_share_at_a_time():
    """A partition holding a big collection's records grows its tree to millions of
    entries; a map growing past a size rehashes every key it holds in one go (1.4M keys:
    60-80 ms of a tick's fold). The tree's keys are spread over maps that each hold a
    small share, so a fold rehashes at most that share, and the tree is the same as one
    built afresh from the store."""
    from dynredis.core.merkle import MerkleTree

    n = 64_000
    engine = MemoryEngine()
    local = LocalStore(engine)
    for i in range(n):
        local.put_record(ELEM_BASE + 2, b"r%06d" % i, b"x%d" % i)
    while local.fold_some(2000):
        pass
    folded = local.trees[ELEM_BASE + 2]
    assert folded.root() == LocalStore(engine).trees[ELEM_BASE + 2].root()
    keys = dict.fromkeys(b"r%06d" % i for i in range(n))
    for fold in ("fold", "fold_pure"):  # (the C helper's where built, and Python's)
        tree = MerkleTree(keyed=True)
        for start in range(0, n, 2000):
            getattr(tree, fold)({k: b"x%d" % i for i, k in enumerate(keys)
                                 if start <= i < start + 2000})
        maps = tree._entries
        assert len(tree) == n and sum(map(len, maps)) == n
        assert max(map(len, maps)) <= n // 16
        assert tree.root() == folded.root()
        assert tree.bucket(5) == [(k, d) for k, d in sorted(tree.items())
                                  if tree.bucket_of(k) == 5]
