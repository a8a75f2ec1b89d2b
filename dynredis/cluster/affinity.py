"""Key affinity: a command that reads a key and writes what it decided, a script with
keys, and a plan that writes a key whole (RENAME, COPY, the *STOREs: by its destination,
commands/plangate.py), run at one node per key, the first up node of the key's
preference list.

Dynamo lets any node coordinate any request, which is right for reads and blind writes.
A read-then-write coordinated by two nodes at once can both read "absent" and both
write (two SET NX winners, two holders of one lock). Sent to the same node, they meet
in its key gate (commands/gate.py) and run one after the other. So a node that is not
the key's first up replica hands such a command ("af") to the one that is, with the
client's protocol, user, quorum settings and database; that node runs it (never handing it on)
and answers with the reply ("afa"). The client's later commands wait for the answer, as
they would for the command itself. If the target is lost meanwhile the command fails
with an error rather than being run twice.

A plan runs for as long as its steps take (a RENAME of a million-item list: tens of
seconds), longer than WAIT_MS: while it moves on, or waits its turn behind one that does
(commands/gate.py's `moved`), the node running it tells the handing node so ("afp", at
most once every PROGRESS_MS), which waits WAIT_MS from then and counts its client's reply
as working (server/client.py's unstick).

Pure, as keyscan.py: effects through `node.send`; the server gives `run(args, user,
proto, r, w, db, done, touch)` to execute a handed-over command (`touch()` at each step
of its plan), and calls `tick()`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from ..commands import plangate
from ..commands.databases import storage_key
from ..commands.table import parse_int
from ..core import messages as m
from ..core.attrs import attr_or

# Commands routed by their key (args[1]); SET only with options (plain SET is blind).
KEYED: Final = frozenset({"setnx", "getset", "getdel", "getex", "append", "setrange", "expire",
                   "pexpire", "expireat", "pexpireat", "persist", "setbit", "bitfield",
                   "incrbyfloat", "pfadd"})
SCRIPTS: Final = frozenset({"eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro"})
ROUTED: Final = KEYED | SCRIPTS | plangate.ROUTED | {"set", "del", "unlink"}
WAIT_MS = 60_000  # a command that the target never answers (a script may run long)
PROGRESS_MS = 1_000  # a running plan's "afp" to the handing node, at most this often


def routed_key(name: str, args: list[bytes], db: int = 0) -> bytes | None:
    """The key whose node coordinates this command, or None to run it here. `args` are
    as stored (commands/databases.py) except a script's keys, named as in database
    `db`."""
    if name in KEYED:
        # (a GETEX without options writes nothing: a read, run here as GET is)
        return args[1] if name != "getex" or len(args) > 2 else None
    if name == "set":
        return args[1] if len(args) > 3 else None
    if name in ("del", "unlink"):
        return args[1] if len(args) == 2 else None
    if name in SCRIPTS:
        n = parse_int(args[2])
        return storage_key(db, args[3]) if n is not None and 0 < n <= len(args) - 3 else None
    if name in plangate.ROUTED:
        return plangate.destination(name, args)
    return None


class _Pending:
    __slots__ = ("slot", "conn", "target", "deadline", "name", "down_since")

    def __init__(self, slot: Any, conn: Any, target: str, deadline: int, name: str) -> None:
        self.slot = slot
        self.conn = conn
        self.target = target
        self.deadline = deadline
        self.name = name
        self.down_since = 0  # when the target was first counted down (0: it is not)


class Affinity:
    def __init__(self, node: Any,
                 run: Callable[[list[bytes], str, int, int, int, int,
                                Callable[[bytes], None], Callable[[], None]], None]) -> None:
        self.node = node
        self.run = run
        self.pending: dict[int, _Pending] = {}
        self._reqids = 0
        # INFO dynamo's affinity_* (CONFIG RESETSTAT starts them again from 0)
        self.handed = 0  # commands handed to another node
        self.taken = 0  # commands run for another node
        self.failed = 0  # handed commands failed: their target lost or never answering
        node.register(m.COMMAND_FORWARD, self._on_forward)
        node.register(m.COMMAND_ANSWER, self._on_answer)
        node.register(m.COMMAND_PROGRESS, self._on_progress)

    def forward(self, conn: Any, name: str, args: list[bytes]) -> bool:
        """Hand the command to its key's node if that is another node; True if handed."""
        # (conn.db names a script's keys only: a plain command's key is as stored, and
        # reading an attribute of the untyped connection costs about 200 instructions)
        key = routed_key(name, args, conn.db if name in SCRIPTS else 0)
        if key is None or (name == "move" and conn.cluster_view):  # (refused here)
            return False
        node = self.node
        targets = node.route(node.partition(key)).targets
        if not targets:
            return False
        target = targets[0][0]
        if target == node.name or node.member_status(target) != "up":
            return False
        self.send(conn, target, name, args)
        return True

    def send(self, conn: Any, target: str, name: str, args: list[bytes]) -> None:
        """Run `args` at `target` for `conn`; its reply takes the command's place."""
        node = self.node
        self._reqids += 1
        reqid = self._reqids
        slot = conn.defer()
        conn.hold()
        self.pending[reqid] = _Pending(slot, conn, target, node.now + WAIT_MS, name)
        self.handed += 1
        node.send(target, m.command_forward(reqid, list(args), conn.user, conn.proto,
                                            conn.r or 0, conn.w or 0, conn.db))

    def script_node(self, functions: bool) -> str | None:
        """Where the oldest script (or function) a client of this node sent runs now,
        if it was handed to another node: SCRIPT KILL / FUNCTION KILL go there."""
        for p in self.pending.values():
            if p.name in SCRIPTS and p.name.startswith("fcall") == functions:
                return p.target
        return None

    def reset_stats(self) -> None:
        self.handed = self.taken = self.failed = 0

    def _on_forward(self, src: str, msg: tuple) -> None:
        _, reqid, args, user, proto, r, w, db = msg
        node = self.node
        self.taken += 1

        def done(reply: bytes) -> None:
            node.send(src, m.command_answer(reqid, reply))

        told = node.now

        def touch() -> None:
            """A step of its plan, or of the one it waits for: tell `src` now and then."""
            nonlocal told
            if node.now - told >= PROGRESS_MS:
                told = node.now
                node.send(src, m.command_progress(reqid))

        self.run(list(args), user, proto, r, w, int(db), done, touch)

    def _on_answer(self, src: str, msg: tuple) -> None:
        p = self.pending.pop(msg[1], None)
        if p is not None:
            self._finish(p, msg[2])

    def _on_progress(self, src: str, msg: tuple) -> None:
        """The target is still running it (a plan's step): wait WAIT_MS from now, and
        the request timeout from now if the detector counts it down meanwhile."""
        p = self.pending.get(msg[1])
        if p is None or p.target != src:
            return
        p.deadline = self.node.now + WAIT_MS
        p.down_since = 0
        touch = attr_or(p.slot, "touch", None)
        if touch is not None:
            touch()

    def _finish(self, p: _Pending, reply: bytes) -> None:
        p.slot.set(reply)
        p.conn.release_hold()

    def tick(self) -> None:
        """Fail the handed commands whose target is gone: its link lost, or counted down
        (its heartbeats late) for the request timeout on end, or silent for WAIT_MS. A
        target busy for a second or two (writing a 100 MB value) is counted down by the
        detector meanwhile: failing at once, as before, answered "may or may not have
        run" for commands that ran (a SETRANGE of 100 MB at load 10)."""
        node = self.node
        now = node.now
        for reqid, p in list(self.pending.items()):
            if node.member_status(p.target) != "down":
                p.down_since = 0
                gone = False
            elif node.link_lost(p.target):
                gone = True
            else:
                if not p.down_since:
                    p.down_since = now
                gone = now - p.down_since >= node.cfg.timeout_ms
            if gone or now >= p.deadline:
                del self.pending[reqid]
                self.failed += 1
                self._finish(p, b"-ERR the node coordinating this key (" + p.target.encode()
                             + b") did not answer; the command may or may not have run\r\n")
