"""WATCH / UNWATCH: an optimistic check of the watched keys' versions at EXEC.

WATCH reads each key's version through a read quorum of its replicas: the causal
context of everything stored under the key, whatever its type (a string's or counter's
object, a collection's header with the set of update events applied to its elements,
its removal record), and whether it is live (so a key that appeared, vanished or
expired counts as changed). EXEC reads the versions again the same way and, if any
differs, or if a command that writes the key ran through this node meanwhile (this
client's own included, as in Redis), aborts: a null reply, nothing run. With R + W > N
every write acknowledged between the two reads is seen by the second.

What it does not guarantee: the check and the batch are two steps. A write that lands
after EXEC's check and before the batch's own writes (through another node) is not
seen; the batch then runs over it as MULTI/EXEC does without WATCH. Writes through
this node in that window are seen (they mark the watch dirty), except those of
commands that may write nothing (MAY_WRITE_NOTHING). See README "WATCH".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from hashlib import blake2b
from typing import Any

import msgpack

from ..core import obj as objmod
from ..core.collview import KeyView
from ..resp import encode as resp
from .collection import Built, error_reply, internal_step
from .context import Context
from .table import Command, command, numkeys_keys

ERR_WATCH_IN_MULTI = resp.error("ERR WATCH inside MULTI is not allowed")
SCRIPTS = frozenset({"eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro"})
FLUSHES = frozenset({"flushall", "flushdb", "swapdb"})
# Read-then-writes that may decide to write nothing (DEL of a missing key, SET NX of a
# present one, EXPIRE of a missing one ...): Redis touches a watched key only when such a
# command changed it. They do not mark a watch when they run; a write they make changes
# the key's version, which EXEC reads (a client's own command has written before its EXEC
# runs: a connection's later commands wait for its read-then-writes).
MAY_WRITE_NOTHING = frozenset({
    "del", "unlink", "setnx", "getdel", "getex", "expire", "pexpire", "expireat",
    "pexpireat", "persist"})
_script_keys = numkeys_keys(2)


@internal_step("dyn.version")
def build_version(args: list[bytes], proto: int) -> Built | bytes:
    """[dyn.version, key] -> a digest of the key's version (see module docstring), read
    at a replica after a read quorum's sync."""

    def op(v: KeyView) -> Any:
        return version_of(v)

    return args[1], op


def version_of(v: KeyView) -> bytes:
    header = objmod.encode(v.header) if v.header is not None else b""
    st = v.state
    packed = msgpack.packb([v.type() is not None, header, st.summary.pack(),
                            st.removal.pack()])
    return blake2b(packed, digest_size=16).digest()


def read_version(c: Context, key: bytes, cb: Callable[[str | None, bytes | None], None]
                 ) -> None:
    """Quorum-read `key`'s version; `cb(error reason or None, version)`."""

    def done(result: tuple[str | None, Any]) -> None:
        cb(result[0], result[1] if result[0] is None else None)

    c.node.coll.run(key, lambda v: version_of(v), done, ([b"dyn.version", key], 2), c.r,
                    None)


class WatchState:
    """One client's watched keys: their versions as WATCH read them (None: unknown,
    its read failed or is under way), and how many writes through this node marked one
    since (a mark is taken back when its command answers an error: `unmark`)."""

    __slots__ = ("versions", "pending", "waiters", "marks")

    def __init__(self) -> None:
        self.versions: dict[bytes, bytes | None] = {}
        self.pending = 0  # WATCH reads still under way
        self.waiters: list[Callable[[], None]] = []  # EXEC checks waiting for them
        self.marks = 0

    @property
    def dirty(self) -> bool:
        return self.marks > 0

    def when_read(self, then: Callable[[], None]) -> None:
        if self.pending:
            self.waiters.append(then)
        else:
            then()

    def read_done(self) -> None:
        self.pending -= 1
        if not self.pending:
            waiters, self.waiters = self.waiters, []
            for then in waiters:
                then()


class Watchers:
    """The keys this node's clients watch: a command that writes one, run through this
    node, marks its watchers dirty (Redis' touchWatchedKey)."""

    def __init__(self) -> None:
        self.by_key: dict[bytes, set[WatchState]] = {}
        self.states: set[WatchState] = set()

    def add(self, key: bytes, state: WatchState) -> None:
        self.by_key.setdefault(key, set()).add(state)
        self.states.add(state)

    def remove(self, state: WatchState) -> None:
        self.states.discard(state)
        for key in state.versions:
            held = self.by_key.get(key)
            if held is not None:
                held.discard(state)
                if not held:
                    del self.by_key[key]

    def touch(self, keys: Iterable[bytes]) -> list[WatchState]:
        """Mark the watches of `keys`; the states marked (once per mark)."""
        by_key = self.by_key
        marked: list[WatchState] = []
        for key in keys:
            held = by_key.get(key)
            if held:
                marked += held
        for state in marked:
            state.marks += 1
        return marked

    def touch_all(self) -> list[WatchState]:
        marked = list(self.states)
        for state in marked:
            state.marks += 1
        return marked

    def wrote(self, cmd: Command, args: list[bytes]) -> list[WatchState] | None:
        """`cmd` ran (or was handed to its key's node): mark what it may write; the
        states marked, to `unmark` if it answers that it wrote nothing."""
        if not self.states:
            return None
        name = cmd.name
        if name in FLUSHES:
            return self.touch_all()
        if name in MAY_WRITE_NOTHING or (name == "set" and len(args) > 3):
            return None  # left to EXEC's version read: see MAY_WRITE_NOTHING
        if name in SCRIPTS:
            self.touch(command_keys(cmd, args))
            return None  # (an error may come after its writes: the marks stand)
        if "write" in cmd.flags:
            return self.touch(command_keys(cmd, args))
        return None


def unmark(marked: list[WatchState], reply: bytes) -> None:
    """Take back the marks of a command that answered `reply`, if that error says it
    wrote nothing: Redis touches a watched key only when a command changed it (INCR of a
    non-integer, LPUSH on a string aborted the watching EXEC). NOQUORUM, TIMEOUT and an
    internal error may follow a write that landed somewhere: their marks stand."""
    if reply.startswith(_WROTE_NOTHING) and not reply.startswith(b"-ERR internal error"):
        for state in marked:
            state.marks -= 1


_WROTE_NOTHING = (b"-ERR", b"-WRONGTYPE")


def command_keys(cmd: Command, args: list[bytes]) -> list[bytes]:
    """The key arguments of a command (as COMMAND GETKEYS finds them)."""
    if cmd.name in SCRIPTS:
        return _script_keys(args) or []
    if cmd.keys_of is not None:
        return cmd.keys_of(args) or []
    first, last, step = cmd.first_key, cmd.last_key, cmd.step or 1
    if not first or first >= len(args):
        return []
    end = len(args) + last if last < 0 else min(last, len(args) - 1)
    return [args[i] for i in range(first, end + 1, step)]


def unwatch(c: Context) -> None:
    state = c.watch
    if state is not None:
        c.watch = None
        c.watchers.remove(state)


@command("watch", -2, ("noscript", "loading", "stale", "fast", "allow_busy"), 1, -1, 1,
         "transactions", "Watches keys: EXEC aborts if one changed (an optimistic check "
         "by quorum reads, README 'WATCH').", since="2.2.0")
def cmd_watch(c: Context, args: list[bytes]) -> bytes | None:
    if c.tx is not None:
        return ERR_WATCH_IN_MULTI
    state = c.watch
    if state is None:
        state = c.watch = WatchState()
    fresh = [k for k in dict.fromkeys(args[1:]) if k not in state.versions]
    if not fresh:
        return resp.OK
    slot = c.defer()
    left = [len(fresh)]
    failed: list[str] = []
    watchers = c.watchers

    # the client's later commands on a watched key wait until its version is read (one
    # of them changing the key first would go unseen: EXEC would compare its result)
    waiter = getattr(c, "gate_waiter", None)

    def read(key: bytes) -> None:
        if waiter is not None:
            waiter.gate_wait(key)

        def got(err: str | None, version: bytes | None) -> None:
            if state.versions.get(key, b"") is None:  # (still watched)
                state.versions[key] = version
            if err is not None:
                failed.append(err)
            left[0] -= 1
            if not left[0]:
                slot.set(error_reply(failed[0]) if failed else resp.OK)
            state.read_done()
            if waiter is not None:
                waiter.gate_passed(key)

        read_version(c, key, got)

    for key in fresh:
        state.versions[key] = None
        state.pending += 1
        watchers.add(key, state)
    for key in fresh:
        read(key)
    return None


@command("unwatch", 1, ("noscript", "loading", "stale", "fast", "allow_busy"),
         group="transactions", summary="Forgets all the watched keys.", since="2.2.0")
def cmd_unwatch(c: Context, args: list[bytes]) -> bytes:
    unwatch(c)
    return resp.OK


def check(c: Context, then: Callable[[bytes | None], None]) -> None:
    """EXEC's check: `then(None)` to run the batch, or `then(reply)` instead (a null
    array: a watched key changed; an error: a version could not be read). The client's
    watch ends here either way."""
    state = c.watch
    if state is None:
        then(None)
        return
    abort = resp.NIL3 if c.proto >= 3 else resp.NIL_ARRAY2

    def finish(reply: bytes | None) -> None:
        if c.watch is state:
            unwatch(c)
        then(abort if reply is None and state.dirty else reply)

    def compare() -> None:
        versions = dict(state.versions)
        if state.dirty or any(v is None for v in versions.values()):
            finish(abort)
            return
        left = [len(versions)]
        changed: list[bytes] = []
        failed: list[str] = []

        def read(key: bytes) -> None:
            def got(err: str | None, version: bytes | None) -> None:
                if err is not None:
                    failed.append(err)
                elif version != versions[key]:
                    changed.append(key)
                left[0] -= 1
                if not left[0]:
                    if failed:
                        finish(error_reply(failed[0]))
                    else:
                        finish(abort if changed else None)

            read_version(c, key, got)

        for key in versions:
            read(key)

    state.when_read(compare)
