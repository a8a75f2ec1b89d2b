"""The driver contract: how a node starts, and how each of its events ends.

Two drivers run nodes, the asyncio server (server/app.py) and the simulator
(tests/sim/harness.py), and both must do exactly this, so it is written once:

- `boot(engine, durability, fresh)` before building the `Node`: the clock identity
  (identity.py: a new one after a crash in a lossy durability mode) and the ring and
  members saved by the last run; the engine is marked not cleanly shut down.
- after every event (a request, a peer message or a batch of them, a tick, a link
  change): `settle(node, on_error)` runs finished operations' callbacks (which may
  finish more; the server's stops once its turn's time is spent and hands back what
  is left, to settle in a later turn) and saves ring and members when they changed;
  then `release(node, engine, fsync)` commits staged writes first when the durability
  mode is fsync (no acknowledgement may leave before the write it acknowledges is on
  disk) and hands over the outbox to send. A driver may settle several events before
  one release (the server releases once per loop turn).
- after a tick, `node.fold_step()` until it returns False (the server: one step a loop
  turn, between reads, so that hashing the tick's share of writes into the anti-entropy
  trees never holds the loop for long).
- `node.stalled(ms)` when the driver could not run for `ms` (the server: a tick that
  ran late): requests in flight get that time back before they are timed out;
  `node.clock_stepped(ms, before)` when the wall clock `now` is read from jumped ahead
  of the time that passed (the server: against its monotonic clock, at each tick).
- `shutdown(engine)` on a clean stop: everything committed and synced, and the mark
  that lets the next start keep the clock identity.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgpack

from .engine import Engine
from .identity import choose_actor
from .ring import Ring

if TYPE_CHECKING:
    from .node import Node


class Boot:
    """What a starting node is built from."""

    __slots__ = ("actor", "ring", "members", "renewed")

    def __init__(self, actor: bytes, ring: Ring | None, members: set[str] | None,
                 renewed: bool) -> None:
        self.actor = actor
        self.ring = ring  # None: a new node (it starts with a ring of its own)
        self.members = members
        self.renewed = renewed  # a stored identity was replaced (unclean shutdown)


def boot(engine: Engine, durability: str, fresh: bytes) -> Boot:
    """Read (and update) the engine's metadata for a start; `fresh` is random bytes the
    driver drew, used if the node needs a new clock identity."""
    stored = engine.meta_get("actor")
    clean = engine.meta_get("clean_shutdown") == b"1"
    actor = choose_actor(stored, clean, durability, fresh)
    if actor != stored:
        engine.meta_put("actor", actor)
    engine.meta_put("clean_shutdown", b"0")
    ring, members = load_membership(engine)
    return Boot(actor, ring, members, stored is not None and actor != stored)


def load_membership(engine: Engine) -> tuple[Ring | None, set[str] | None]:
    raw = engine.meta_get("ring")
    if raw is None:
        return None, None
    wire, members = msgpack.unpackb(raw, use_list=False)
    return Ring.from_wire(wire), set(members)


def save_membership(engine: Engine, ring: Ring, members: set[str]) -> None:
    engine.meta_put("ring", msgpack.packb((ring.to_wire(), sorted(members)),
                                          use_bin_type=True))


Done = list[tuple[Callable[[Any], Any], Any]]


def settle(node: Node, on_error: Callable[[Exception], None],
           spent: Callable[[], bool] | None = None) -> Done | None:
    """Run finished operations' callbacks until none is left, then save membership if
    it changed. A callback that raises is reported to `on_error`; the others still run.

    With `spent` (the server's: its loop turn's share of time is used up), it is asked
    after every callback but the last: once it says so, the callbacks left (those
    finished before and those the run ones finished) are returned, in order, for the
    driver to settle in a later turn (None: nothing is left). A chain of operations
    that finish at once (N=1: each write is acknowledged as it is made) ran whole in one
    settle: a FLUSHDB of 600,000 keys held a 1-node cluster's loop 24-34 s, a RENAME of a
    million-item list 6.8-16 s, whatever slices their plans were cut in; and callbacks
    asked about in batches of 64 held it 0.5-1.6 s when each started costly work (33
    pipelined SORT_RO ... BY of a 16,000-member set). The first callback always runs;
    where several finished together, `spent` is asked once before it, so that its time
    counts (a lone callback asks nothing: no clock read per request)."""
    left: Done | None = None
    if spent is not None and len(node.done) > 1:
        spent()  # (asked first: the first callback's time counts, whatever it says)
    while node.done:
        done = node.done
        node.done = []
        if spent is None:
            _run(done, on_error)
            continue
        last = len(done) - 1
        for i, (cb, result) in enumerate(done):
            try:
                cb(result)
            except Exception as exc:
                on_error(exc)
            if (i < last or node.done) and spent():
                left = done[i + 1:] + node.done
                node.done = []
                break
        if left is not None:
            break
    if node.ring_changed:
        node.ring_changed = False
        save_membership(node.engine, node.ring, node.members)
    return left


def _run(done: Done, on_error: Callable[[Exception], None]) -> None:
    for cb, result in done:
        try:
            cb(result)
        except Exception as exc:
            on_error(exc)


def release(node: Node, engine: Engine, fsync: bool) -> dict[str, list[tuple]]:
    """The messages to send now, by peer; in fsync mode staged writes are committed and
    synced first."""
    if fsync and engine.pending():
        engine.commit(True)
    return node.take_outbox() if node.outbox else {}


def shutdown(engine: Engine) -> None:
    """A clean stop: commit and sync, mark the shutdown clean, close."""
    engine.commit(True)
    engine.meta_put("clean_shutdown", b"1")
    engine.close()
