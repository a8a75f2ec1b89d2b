"""Walks of the keyspace: SCAN, KEYS, DBSIZE and RANDOMKEY, cluster-wide or own partitions.

Pure, as the core is: no I/O, no clock reads (the node's `now` and `rng` only).
`KeyScan(node)` registers two peer message kinds with `node.register`; the driver calls
`tick()` after `node.tick()` so that unanswered requests time out and fail over; results
reach callbacks through `node.done`, as every coordinator operation's do.

Two views of the keyspace:

- cluster-wide (`own=False`): every partition of the ring, each read from ONE up primary
  replica of it (core/coverage.py: this node when it is one, else the first up node of
  the preference list), so every live key is reported exactly once;
- own (`own=True`): only the partitions this node owns, from its local data, as a Redis
  Cluster master answers for its own slots (cluster-aware clients fan these commands
  out to every master and add the answers up).

The SCAN cursor is a position in the keyspace, the same on every node:
``cursor = partition * segments + bucket``, where `bucket` is the key's anti-entropy
hash-tree bucket (`MerkleTree.bucket_of`, a hash of the key alone, `segments` buckets
per partition). A scan visits partitions in ring order and each partition's buckets in
order, whole buckets at a time, and the cursor it returns is the first bucket not yet
visited (0 once every partition is done). A key's position never changes and every
position is visited once, so a key present for the whole scan is reported exactly once,
when the scan passes its position, by the replica asked about that bucket (one that
missed a write, e.g. a node just back from a failure, has the key again once anti-
entropy or read repair reached it). The cursor carries no node state, so a scan
started on one node can be continued on any other.

Peer messages (core/messages.py):
  ("kq", reqid, what, partitions, args)    a keyspace query    -> ("kqr", reqid, result)
     what = "scan"  args (bucket, count, budget, match, want, db)
                    result (keys, partitions done, next bucket, keys examined, visited)
     what = "keys"  args (match, db)  result [key, ...]
     what = "count" args ()        result [(db, live keys, those with a TTL, sum of their
                                   TTLs ms), ...] for each database with keys: from the
                                   local store's counts (core/keycounts.py), not a walk
     what = "random" args (db,)    result (weight, key or None)

Every walk but "count" covers one numbered database (commands/databases.py): the keys it
reports and matches are that database's, named as its clients name them.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Sequence
from typing import Any

from ..commands.databases import in_db, user_key
from ..commands.glob import matcher
from ..core import messages as m
from ..core import obj as objmod
from ..core.coverage import covering, plan
from ..core.records import marker_type

Callback = Callable[[tuple[str | None, Any]], Any]

# Buckets one SCAN call may look at (whatever COUNT says), so that a scan over an empty
# or sparse keyspace still answers quickly, with a cursor to continue from.
SCAN_BUDGET_PARTITIONS = 8
# Keys one SCAN call examines at most, whatever COUNT says (a hint, in Redis too): a
# SCAN 0 COUNT 10000000 over 100,000 keys walked them all in one turn (630 ms); the
# cursor it returns goes on from where it stopped.
SCAN_COUNT_MAX = 8192
# A partition holding fewer keys than a SPARSE-th of its buckets is walked from one bucket
# that lists keys to the next (MerkleTree.occupied: a sort of the listed buckets); a
# denser one bucket by bucket.
SPARSE = 4
# Stored keys one SCAN call reads at most, of any database: a SCAN 0 COUNT 1000000000 of
# a database holding one key of 1.1 million read every other database's in one turn
# (1.1 s of CPU; partitions the store's counts say hold none of its keys are now passed
# by, but a few keys spread over every partition leave the others' to read). A call
# stops at the end of the bucket where it passes this many, with the cursor to go on.
# (65,536: a SCAN 0 COUNT 10^9 of a database holding few of a million keys read ~40 ms.)
SCAN_READ_MAX = 32_768
# Partitions one remote scan request may cover.
MAX_RUN = 16
RANDOM_TRIES = 16
# Keys one slice of a local KEYS walk (or DBSIZE / INFO keyspace's, when the store's
# counts cannot answer) reads before the node goes back to its other clients (about
# 10-20 ms): a DBSIZE over 100,000 keys froze a node 350 ms in one turn.
WALK_SLICE = 4096


class _Op:
    """A client's keyspace command in flight."""

    __slots__ = ("what", "cb", "avoid", "waiting", "acc", "finished", "parts", "idx",
                 "bucket", "count", "budget", "match", "want", "examined", "visited", "db",
                 "spent")

    def __init__(self, what: str, cb: Callback, parts: list[int]) -> None:
        self.what = what
        self.cb = cb
        self.parts = parts
        self.avoid: set[str] = set()  # replicas that did not answer in time
        self.waiting = 0
        self.acc: Any = None
        self.finished = False
        self.idx = 0
        self.bucket = 0
        self.count = 0
        self.budget = 0
        self.match: bytes | None = None
        self.want: bool | str = True
        self.examined = 0
        self.visited = 0
        self.db = 0
        self.spent = False  # a local walk read SCAN_READ_MAX keys: the call ends there


class _Sub:
    """One request to one peer on behalf of an op."""

    __slots__ = ("reqid", "op", "target", "parts", "deadline")

    def __init__(self, reqid: int, op: _Op, target: str, parts: list[int], deadline: int) -> None:
        self.reqid = reqid
        self.op = op
        self.target = target
        self.parts = parts
        self.deadline = deadline


class _Walk:
    """A walk of this node's partitions, a slice at a time: `visit(stored key, head)` for
    each key, then `finish()`. Between slices the node serves other requests; the walk
    reads each partition through one `scan_heads` iterator (ordered, never repeating a
    key, never pinning old pages), so a key present throughout is visited exactly once."""

    __slots__ = ("parts", "idx", "it", "visit", "finish")

    def __init__(self, parts: Sequence[int], visit: Callable[[bytes, bytes], None],
                 finish: Callable[[], None]) -> None:
        self.parts = list(parts)
        self.idx = 0
        self.it: Any = None
        self.visit = visit
        self.finish = finish


class KeyScan:
    """SCAN / KEYS / DBSIZE / RANDOMKEY for one node (see the module docstring).

    `wake`, when given, is called when a local walk is queued while none was: the
    driver then calls `step()` in later loop turns until it returns False. Without it
    (the simulation) walks run to their end at once."""

    def __init__(self, node: Any, wake: Callable[[], None] | None = None) -> None:
        self.node = node
        self.wake = wake
        self.walks: list[_Walk] = []
        trees = node.local.trees
        self.segments: int = trees.fanout**trees.depth
        self.pending: dict[int, _Sub] = {}
        # Callbacks waiting for the count in flight, by view (own or not): see keyspace.
        self.counting: dict[bool, list[Callback]] = {}
        node.register(m.KEYSPACE_QUERY, self._on_query)
        node.register(m.KEYSPACE_ANSWER, self._on_answer)

    # --- client commands ---------------------------------------------------------------

    def partitions(self, own: bool) -> list[int]:
        node = self.node
        return node.owned_partitions() if own else list(range(node.ring.q))

    def scan(self, cursor: int, count: int, match: bytes | None, want: bool | str, own: bool,
             cb: Callback, db: int = 0) -> None:
        """One SCAN step from `cursor`; result `(next cursor, [key, ...])`."""
        parts = self.partitions(own)
        op = _Op("scan", cb, parts)
        op.db = db
        seg = self.segments
        p, op.bucket = divmod(cursor, seg)
        # The first partition of the view at or after the cursor's (a cursor from the
        # other view, or past a partition we do not own, starts at its bucket 0).
        lo, hi = 0, len(parts)
        while lo < hi:
            mid = (lo + hi) // 2
            if parts[mid] < p:
                lo = mid + 1
            else:
                hi = mid
        op.idx = lo
        if lo < len(parts) and parts[lo] != p:
            op.bucket = 0
        op.count = min(count, SCAN_COUNT_MAX)
        # As Redis visits at most 10 * COUNT buckets per call (COUNT as capped; a walk
        # steps over the buckets that list no key).
        op.budget = max(SCAN_BUDGET_PARTITIONS * seg, 10 * op.count)
        op.match = match
        op.want = want
        op.acc = []
        self._scan_step(op)

    def keys(self, match: bytes | None, own: bool, cb: Callback, db: int = 0) -> None:
        """Every live key of database `db` matching `match`; result `[key, ...]`."""
        op = _Op("keys", cb, self.partitions(own))
        op.acc = []
        op.match = match
        op.db = db
        self._fan_out(op, op.parts)

    def dbsize(self, own: bool, cb: Callback, db: int = 0) -> None:
        """The number of live keys of database `db`; result an int."""

        def keys_only(result: tuple[str | None, Any]) -> None:
            e, figures = result
            cb((e, figures.get(db, (0, 0, 0))[0] if e is None else None))

        self.keyspace(own, keys_only)

    def keyspace(self, own: bool, cb: Callback) -> None:
        """INFO keyspace's figures; result {database: (live keys, keys with a TTL, sum of
        TTLs ms)} for the databases holding keys.

        Asked while a count of the same view is in flight, the answer is that count's:
        a count once walked every key of every node (it now sums each node's counts,
        but still asks every node holding a partition), and 500 INFO or DBSIZE in one
        write froze every node for the length of 500 walks."""
        waiting = self.counting.get(own)
        if waiting is not None:
            waiting.append(cb)
            return
        waiting = self.counting[own] = [cb]

        def counted(result: tuple[str | None, Any]) -> None:
            del self.counting[own]
            self.node.done.extend((w, result) for w in waiting)

        op = _Op("count", counted, self.partitions(own))
        op.acc = {}
        self._fan_out(op, op.parts)

    def randomkey(self, own: bool, cb: Callback, db: int = 0) -> None:
        """A random live key of database `db`, or None when there is none."""
        op = _Op("random", cb, self.partitions(own))
        op.acc = []
        op.db = db
        self._fan_out(op, op.parts)

    def tick(self) -> None:
        """Time out unanswered requests: ask another replica of their partitions."""
        now = self.node.now
        late = [sub for sub in self.pending.values() if sub.deadline <= now]
        for sub in late:
            del self.pending[sub.reqid]
            op = sub.op
            if op.finished:
                continue
            op.avoid.add(sub.target)
            if op.what == "scan":
                self._scan_step(op)
            else:
                op.waiting -= 1
                self._fan_out(op, sub.parts)

    # --- placement -----------------------------------------------------------------------

    def _target(self, p: int, avoid: set[str]) -> str | None:
        node = self.node
        return covering(node.ring, node.cfg.n, node.name, node.down, avoid, p)

    def _fail(self, op: _Op, p: int) -> None:
        if not op.finished:
            op.finished = True
            n = self.node.cfg.n
            self.node.done.append(
                (op.cb, (f"NOQUORUM keyspace walk needed 1 of {n} replicas of partition {p}, "
                         "got 0", None)))

    def _finish(self, op: _Op, result: Any) -> None:
        if not op.finished:
            op.finished = True
            self.node.done.append((op.cb, (None, result)))

    def _send(self, op: _Op, target: str, parts: list[int], what: str, *args: Any) -> None:
        node = self.node
        sub = _Sub(node.next_reqid(), op, target, parts, node.now + node.cfg.timeout_ms)
        self.pending[sub.reqid] = sub
        node.send(target, m.keyspace_query(sub.reqid, what, parts, args))

    # --- SCAN ----------------------------------------------------------------------------

    def _scan_step(self, op: _Op) -> None:
        """Walk on from the op's position until COUNT keys were examined, the budget is
        spent or the keyspace is done; a remote run of partitions ends the step until
        its answer comes."""
        me = self.node.name
        parts = op.parts
        while not op.finished:
            if op.idx >= len(parts):
                self._finish(op, (0, op.acc))
                return
            if op.examined >= op.count or op.visited >= op.budget or op.spent:
                self._finish(op, (parts[op.idx] * self.segments + op.bucket, op.acc))
                return
            target = self._target(parts[op.idx], op.avoid)
            if target is None:
                self._fail(op, parts[op.idx])
                return
            end = op.idx + 1
            limit = len(parts) if target == me else op.idx + MAX_RUN
            while end < min(limit, len(parts)) and self._target(parts[end], op.avoid) == target:
                end += 1
            run = parts[op.idx:end]
            left, budget = op.count - op.examined, op.budget - op.visited
            if target == me:
                result = self.walk(run, op.bucket, left, budget, op.match, op.want, op.db)
                self._scan_apply(op, result)
                op.spent = result[5] >= SCAN_READ_MAX
            else:
                self._send(op, target, run, "scan", op.bucket, left, budget, op.match, op.want,
                           op.db)
                return

    def _scan_apply(self, op: _Op, result: Sequence[Any]) -> None:
        keys, done, bucket, examined, visited = result[:5]
        op.acc.extend(keys)
        op.idx += int(done)
        op.bucket = int(bucket)
        op.examined += int(examined)
        op.visited += max(1, int(visited))

    def walk(self, parts: Sequence[int], bucket: int, count: int, budget: int,
             match: bytes | None, want: bool | str = True, db: int = 0
             ) -> tuple[list[bytes], int, int, int, int, int]:
        """Scan local data of `parts` in order, from `bucket` of the first, whole buckets
        at a time, until `count` keys of database `db` were examined (live or expired:
        Redis' COUNT counts the expired keys its walk meets too), `budget` buckets
        visited or SCAN_READ_MAX stored keys read.

        Returns (matching live keys, how many partitions were finished, the next bucket
        in the first unfinished one, keys examined, buckets visited, stored keys read).
        `want`: True for keys of any type, or a type's name (SCAN TYPE)."""
        local = self.node.local
        none_live, now = local.counts.none_live, self.node.now
        seg = self.segments
        match_fn = matcher(match)
        live = self._live if want is True else self._type_of
        keys: list[bytes] = []
        examined = visited = read = 0
        i = 0
        b = max(0, min(int(bucket), seg))
        n = len(parts)
        while i < n:
            p = parts[i]
            tree = local.held_tree(p)
            held = len(tree) if tree is not None else 0
            buckets: Sequence[int] = ()
            if not held or none_live(p, db, now):
                visited += 1  # an empty partition costs next to nothing
            elif held * SPARSE < seg:
                # Most buckets empty: only those that list keys are visited (visiting
                # every one, ~1 µs each, took a SCAN 0 COUNT 1000000000 of ~700 keys 66
                # ms). A denser partition's buckets are visited in turn (no sort).
                buckets = tree.occupied()  # type: ignore[union-attr]
            else:
                buckets = range(seg)
            for bucket in buckets[bisect_left(buckets, b):]:
                items = tree.bucket(bucket)  # type: ignore[union-attr]
                b = bucket + 1
                visited += 1
                read += len(items)
                for stored, _ in items:
                    key = in_db(stored, db)
                    if key is None:
                        continue
                    examined += 1
                    t = live(p, stored)
                    if t and (want is True or t == want) and (match_fn is None or
                                                             match_fn(key)):
                        keys.append(key)
                if examined >= count or visited >= budget or read >= SCAN_READ_MAX:
                    break
            else:
                b = seg  # the partition is done
            if b >= seg:
                i += 1
                b = 0
            if examined >= count or visited >= budget or read >= SCAN_READ_MAX:
                break
        return keys, i, b, examined, visited, read

    def _type_of(self, p: int, key: bytes) -> str | None:
        """The type of a live key ("string", "hash" ...), or None. A large value is left
        unread (get_shape): only its sibling's marker and expiry decide (SCAN TYPE over a
        100 MB string decoded all of it)."""
        obj, _ = self.node.local.get_shape(p, key)
        if obj is None:
            return None
        sib = objmod.read_value(obj, self.node.now)
        if sib is None:
            return None
        return marker_type(sib[2]) or "string"

    def _live(self, p: int, key: bytes) -> bool:
        head = self.node.local.head(p, key)
        return head is not None and objmod.read_expiry(head, self.node.now) is not None

    # --- KEYS, DBSIZE, RANDOMKEY: one request per replica, in parallel -------------------------

    def _fan_out(self, op: _Op, parts: Sequence[int]) -> None:
        node = self.node
        groups, unreachable = plan(node.ring, node.cfg.n, node.name, node.down, op.avoid, parts)
        if unreachable is not None:
            self._fail(op, unreachable)
            return
        local = groups.pop(node.name, None)
        for target, run in groups.items():
            op.waiting += 1
            self._send(op, target, run, op.what, *self._args(op))
        if local is not None:
            op.waiting += 1

            def merged(result: Any) -> None:
                op.waiting -= 1
                if not op.finished:
                    self._merge(op, result)
                    self._maybe_done(op)

            self._local_query(op.what, local, self._args(op), merged)
        self._maybe_done(op)

    @staticmethod
    def _args(op: _Op) -> tuple:
        if op.what == "keys":
            return (op.match, op.db)
        if op.what == "random":
            return (op.db,)
        return ()

    def _merge(self, op: _Op, result: Any) -> None:
        if op.what == "keys":
            op.acc.extend(result)
        elif op.what == "count":
            for db, *figures in result:
                before = op.acc.get(int(db), (0, 0, 0))
                op.acc[int(db)] = tuple(a + int(b) for a, b in zip(before, figures, strict=True))
        else:
            op.acc.append(tuple(result))

    def _maybe_done(self, op: _Op) -> None:
        if op.waiting or op.finished:
            return
        if op.what == "count":
            self._finish(op, dict(op.acc))
            return
        if op.what != "random":
            self._finish(op, op.acc)
            return
        found = [(int(w), k) for w, k in op.acc if k is not None]
        if not found:
            self._finish(op, None)
            return
        weights = [max(1, w) for w, _ in found]
        self._finish(op, self.node.rng.choices([k for _, k in found], weights)[0])

    def _local_query(self, what: str, parts: Sequence[int], args: tuple,
                     answer: Callable[[Any], None]) -> None:
        """Answer a walk of own partitions: `answer(result)`, now or after the slices."""
        if what == "keys":
            self.keys_local(parts, args[0], args[1], answer)
        elif what == "count":
            self.count_local(parts, answer)
        else:
            self.random_local(parts, args[0], answer)

    def keys_local(self, parts: Sequence[int], match: bytes | None, db: int,
                   answer: Callable[[list[bytes]], None]) -> None:
        """`answer([key, ...])`: every live key of database `db` in `parts` matching."""
        match_fn = matcher(match)
        out: list[bytes] = []

        def visit(stored: bytes, head: bytes) -> None:
            key = in_db(stored, db)
            if key is not None and (match_fn is None or match_fn(key)) and \
                    objmod.read_expiry(head, self.node.now) is not None:
                out.append(key)

        self._walk(self._holding(parts, db), visit, lambda: answer(out))

    def _holding(self, parts: Sequence[int], db: int) -> list[int]:
        """The partitions of `parts` that may hold live keys of database `db` (the
        store's counts say which surely do not: a KEYS or RANDOMKEY of a database
        holding one key of 1.1 million read them all)."""
        none_live, now = self.node.local.counts.none_live, self.node.now
        return [p for p in parts if not none_live(p, db, now)]

    def count_local(self, parts: Sequence[int],
                    answer: Callable[[list[tuple[int, int, int, int]]], None]) -> None:
        """`answer(...)`: for each database holding live keys: (database, live keys,
        live keys with a TTL, the sum of their remaining TTLs in ms), from the store's
        counts (core/keycounts.py) at once, or by `count_walk` if they cannot say."""
        figures = self.node.local.counts.figures(parts, self.node.now)
        if figures is None:
            self.count_walk(parts, answer)
        else:
            answer(figures)

    def count_walk(self, parts: Sequence[int],
                   answer: Callable[[list[tuple[int, int, int, int]]], None]) -> None:
        """`count_local`'s figures by a walk of every key, a slice at a time (what the
        counts must always equal)."""
        figures: dict[int, list[int]] = {}

        def visit(stored: bytes, head: bytes) -> None:
            now = self.node.now
            expiry = objmod.read_expiry(head, now)
            if expiry is not None:
                db = user_key(stored)[0]
                f = figures.get(db)
                if f is None:
                    f = figures[db] = [0, 0, 0]
                f[0] += 1
                if expiry:
                    f[1] += 1
                    f[2] += expiry - now

        self._walk(parts, visit, lambda: answer(
            [(db, *f) for db, f in sorted(figures.items())]))  # type: ignore[misc]

    def pick_live(self, parts: Sequence[int], db: int,
                  answer: Callable[[bytes | None], None]) -> None:
        """`answer(key)`: a live key of database `db` in `parts` drawn evenly (None if
        there is none), by a walk a slice at a time (RANDOMKEY's fallback after its
        samples found only dead keys or other databases': a database holding one key of
        1.1 million, or keys almost all expired, read them all in one turn)."""
        rng = self.node.rng
        live = 0
        chosen: bytes | None = None

        def visit(stored: bytes, head: bytes) -> None:
            nonlocal live, chosen
            key = in_db(stored, db)
            if key is not None and objmod.read_expiry(head, self.node.now) is not None:
                live += 1
                if rng.randrange(live) == 0:  # each of the `live` kept with odds 1/live
                    chosen = key

        self._walk(parts, visit, lambda: answer(chosen))

    # --- local walks, a slice per loop turn ---------------------------------------------------

    def _walk(self, parts: Sequence[int], visit: Callable[[bytes, bytes], None],
              finish: Callable[[], None]) -> None:
        self.walks.append(_Walk(parts, visit, finish))
        if self.wake is None:
            while self.step():
                pass
        elif len(self.walks) == 1:
            self.wake()

    def step(self) -> bool:
        """Read up to WALK_SLICE keys of the queued walks (the oldest first), finishing
        those that end; True while any is left."""
        budget = WALK_SLICE
        local = self.node.local
        while self.walks and budget > 0:
            walk = self.walks[0]
            while budget > 0:
                if walk.it is None:
                    if walk.idx == len(walk.parts):
                        break
                    walk.it = local.scan_heads(walk.parts[walk.idx])
                    walk.idx += 1
                for stored, head in walk.it:
                    walk.visit(stored, head)
                    budget -= 1
                    if budget == 0:
                        break
                else:
                    walk.it = None
            if walk.it is None and walk.idx == len(walk.parts):
                self.walks.pop(0)
                walk.finish()
        return bool(self.walks)

    def random_local(self, parts: Sequence[int], db: int,
                     answer: Callable[[tuple[int, bytes | None]], None]) -> None:
        """`answer((weight, key))`: a random live key of database `db` in `parts` (named
        as its clients name it) and the weight of the draw (keys held there).

        Samples: a partition weighted by its size, a random non-empty bucket, a random
        key of it; if a few samples only find dead keys, picks among the live ones."""
        local = self.node.local
        rng = self.node.rng
        seg = self.segments
        sized = []
        for p in self._holding(parts, db):
            tree = local.held_tree(p)
            if tree is not None and len(tree):
                sized.append((p, len(tree)))
        total = sum(s for _, s in sized)
        if not total:
            answer((0, None))
            return
        for _ in range(RANDOM_TRIES):
            p = rng.choices([p for p, _ in sized], [s for _, s in sized])[0]
            tree = local.tree(p)
            start = rng.randrange(seg)
            for j in range(seg):
                items = tree.bucket((start + j) % seg)
                if items:
                    stored = rng.choice(items)[0]
                    key = in_db(stored, db)
                    if key is not None and self._live(p, stored):
                        answer((total, key))
                        return
                    break
        self.pick_live([p for p, _ in sized], db,
                       lambda key: answer((0, None) if key is None else (total, key)))

    # --- messages ------------------------------------------------------------------------

    def _on_query(self, src: str, msg: tuple) -> None:
        _, reqid, what, partitions, args = msg
        parts = [int(p) for p in partitions]
        if what == "scan":
            bucket, count, budget, match, want, db = args
            result: Any = self.walk(parts, int(bucket), int(count), int(budget), match,
                                    want if isinstance(want, str) else bool(want),
                                    int(db))[:5]
        elif what in ("keys", "count", "random"):
            local = (args[0], int(args[1])) if what == "keys" else \
                (int(args[0]),) if what == "random" else ()
            self._local_query(what, parts, local,
                              lambda found: self.node.send(src, m.keyspace_answer(reqid, found)))
            return
        else:
            return
        self.node.send(src, m.keyspace_answer(reqid, result))

    def _on_answer(self, src: str, msg: tuple) -> None:
        sub = self.pending.get(msg[1])
        if sub is None or sub.target != src:
            return  # late (already failed over) or not ours
        del self.pending[sub.reqid]
        op = sub.op
        if op.finished:
            return
        if op.what == "scan":
            self._scan_apply(op, msg[2])
            self._scan_step(op)
        else:
            op.waiting -= 1
            self._merge(op, msg[2])
            self._maybe_done(op)
