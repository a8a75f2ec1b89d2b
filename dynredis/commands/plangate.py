"""A plan that writes keys holds their key gates (gate.py) until it answers.

A plan (collection.py) writes over many steps: RENAME reads its source whole, replaces
the destination with a first slice, appends the rest a slice a step (slicedwrite.py)
and deletes from the source what it read. Two plans on one key once ran side by side: a
client was told the reply to its RENAME of a million-item list was lost and sent it
again; both plans had read the source, both replaced the destination and both appended
their slices, and the list ended with 1,761,408 items (issue 12). Two COPY ... REPLACE
or *STOREs into one key merged their items. Redis runs each command whole, so two such
commands end as one of their serial orders.

So a plan that writes enters the gates of all the keys it names (in one order: no
deadlock) and leaves them when it answers. On this node, a second plan on one of them,
a read-then-write (SET NX, DEL, GETDEL ...) and the client's own later commands on them
(the gate's waiter: Redis runs a connection's commands in order) start after it.

- A plan whose client disconnects goes on to its end (Redis would have run the command
  whole; a half-done RENAME leaves a part-written destination).
- A command waiting its turn is touched at each step of the plan holding the gate: its
  connection does not answer it "the reply to this command was lost" meanwhile
  (server/client.py's unstick). One answered so before its turn writes nothing.
- Plans that move one element (LMOVE, RPOPLPUSH, SMOVE, LMPOP, ZMPOP) take no gate: each
  step changes one element at its key's coordinator, and a queue worked by many clients
  would wait a quorum round per move. Nor do plans naming one key, which only read it
  (GEORADIUS and SORT without STORE): concurrent reads of a key do not wait on each other.

The gate is one node's, so a write plan is run by one node per destination: a node that
is not its destination's first up replica hands it there (cluster/affinity.py, as for
SET NX), and two plans into one key sent through two nodes meet in that node's gate.
`destination` names the key: the one a plan writes whole, whose double write is the
damage (two RENAMEs of one list through two nodes both read it and both appended every
slice to the destination: twice the items). RENAME, RENAMENX, COPY: the destination
(RENAME a c and RENAME b c meet; RENAME a b and RENAME a c do not: both may read `a`
and write it whole to b and c, each destination a whole value). MOVE: the key in the
other database, for the same reason. The *STOREs, ZRANGESTORE, GEOSEARCHSTORE: their
first key; GEORADIUS[BYMEMBER] ... STORE and SORT ... STORE: the STORE key. Plans
without a gate (ONE_ELEMENT, reads) are not routed. Inside MULTI/EXEC and scripts a
plan runs at the node the client is on, as every command there does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .databases import key_positions, parse_db, storage_key, user_key
from .gate import unless_answered
from .table import Command, lookup

# Write plans that take no gate (see module docstring).
ONE_ELEMENT = frozenset({"lmove", "rpoplpush", "smove", "lmpop", "zmpop"})

Touch = Callable[[], None] | None
Leave = Callable[[], None]
# `run(leave, touch)`: start the plan; `leave()` once it answered; `touch()` at each step.
Run = Callable[[Leave, Touch], None]


def gated(name: str, flags: tuple[str, ...]) -> bool:
    """Whether the plan command `name` holds its keys' gates."""
    return "write" in flags and name not in ONE_ELEMENT


def plan_keys(cmd: Command | None, args: list[bytes]) -> list[bytes]:
    """The keys a plan command names (as stored: commands/databases.py mapped them)."""
    if cmd is None:
        return []
    if cmd.keys_of is not None:
        return cmd.keys_of(args) or []
    return [args[i] for i in key_positions(cmd, args)]


# Plans whose destination is their first key; RENAME, RENAMENX, COPY, SORT, GEORADIUS and
# GEORADIUSBYMEMBER write their last (SORT and GEORADIUS only with STORE).
FIRST_WRITTEN = frozenset({"sinterstore", "sunionstore", "sdiffstore", "zunionstore",
                           "zinterstore", "zdiffstore", "zrangestore", "geosearchstore"})
LAST_WRITTEN = frozenset({"rename", "renamenx", "copy", "sort", "georadius",
                          "georadiusbymember"})
ROUTED = FIRST_WRITTEN | LAST_WRITTEN | {"move"}


def destination(name: str, args: list[bytes]) -> bytes | None:
    """The key (as stored) by which the write plan `name` is routed to one node (see
    module docstring), or None: no key it writes whole (SORT without STORE), or
    arguments its handler refuses (refused here)."""
    if name == "move":
        db = parse_db(args[2]) if len(args) == 3 else None
        return None if not isinstance(db, int) else storage_key(db, user_key(args[1])[1])
    if name not in ROUTED:
        return None
    keys = plan_keys(lookup(args[0]), args)
    if len(keys) < 2:
        return None
    return keys[0] if name in FIRST_WRITTEN else keys[-1]


def _stay() -> None:
    return None


def hold(c: Any, keys: list[bytes], slot: Any, run: Run) -> None:
    """Run the plan (`run`) for client `c` once it holds the gates of `keys` (as
    stored); at once where there is no gate (a test's context) or fewer than two keys
    (a read: see module docstring)."""
    gate = getattr(c, "gate", None)
    touch = getattr(slot, "touch", None)
    if gate is None or len(keys) < 2:
        run(_stay, touch)
        return

    def moved() -> None:
        if touch is not None:
            touch()
        for key in keys:
            gate.moved(key)

    gate.enter_all(keys, getattr(c, "gate_owner", None),
                   unless_answered(slot, lambda leave: run(leave, moved)),
                   getattr(c, "gate_waiter", None), touch)
