"""Running the commands of hashes, sets, sorted sets and lists.

Each such command is written as a *builder*: from its arguments (and the client's
protocol version) it makes either an error reply (a syntax error found before any key
is looked at, as Redis does) or `(key, op)`, where `op` is a function of the key's
`KeyView` (core/collview.py) that reads and writes the key as a single-node Redis would
and returns the reply's bytes. The core runs `op` at a replica of the key, after bringing
it up to date with a read quorum, and replicates what it wrote (core/collcoord.py). A node
that is not a replica sends the arguments instead, and the replica that coordinates
rebuilds the command with the same builder (`run_forwarded`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator, Sequence
from functools import partial, wraps
from itertools import repeat
from operator import itemgetter
from typing import Any

import msgpack
from mypy_extensions import mypyc_attr

from ..core import obj as objmod
from ..core import records as rec
from ..core.attrs import attr_or
from ..core.clock import Clock
from ..core.collcoord import FAILED, NO_REMOTE
from ..core.collview import KeyView
from ..core.quietlist import untrack
from ..core.stepwindow import Batch, StepWindow
from ..resp import encode as resp
from ..resp.bulks import SlicedReply, decimals, whole
from . import plangate
from .common import NEW, created, looked_up
from .context import Context
from .heldtypes import run_typed
from .table import ERR_WRONGTYPE, KeysOf, command, lookup

Op = Callable[[KeyView], Any]
Built = tuple[bytes, Op]
Builder = Callable[[list[bytes], int], "Built | bytes"]

# A command over several keys (SINTERSTORE, SMOVE, LMOVE ...) is a plan: a generator that
# yields the argument lists of single-key steps (internal or public builders) one at a
# time, gets each step's result back, and returns the reply. Steps run where their key
# lives, one after the other: the command is not atomic across keys (README). A plan may
# also yield a tuple of steps (a batch, e.g. SORT's lookups of other keys): they run at
# the same time and their results come back as a list, in the batch's order.
Step = list[bytes]
Plan = Generator["Step | tuple[Step, ...]", Any, "bytes | SlicedReply"]
PlanBuilder = Callable[[list[bytes], int], "Plan | bytes"]

log = logging.getLogger("dynredis.commands")

BUILDERS: dict[str, Builder] = {}
PLANS: dict[str, PlanBuilder] = {}
# The read commands (flag "readonly"): their key's lookup is a keyspace hit or miss.
READERS: set[str] = set()


_CORE_REASONS = {FAILED: resp.error("ERR internal error running the command"),
                 NO_REMOTE: resp.error("ERR this node cannot run forwarded commands")}


def error_reply(reason: str) -> bytes:
    """The reply for a reason the core gave (NOQUORUM and TIMEOUT are worded there)."""
    return _CORE_REASONS.get(reason) or resp.error(reason)


def deliver(c: Context, slot: Any, result: tuple[str | None, Any]) -> None:
    """Fill a command's slot with its result: the error's reply, or its reply, which a
    long read hands over to be encoded over loop turns (bulks.SlicedReply) where the
    slot is the client's own (not in EXEC or a script: there at once)."""
    err, reply = result
    if err is not None:
        slot.set(error_reply(err))
        return
    if isinstance(reply, SlicedReply):
        if c.send_streamed(slot, reply):
            return
        reply = reply.whole()
    slot.set(reply)


_FIRST, _SECOND = itemgetter(0), itemgetter(1)
WRONGTYPE = ERR_WRONGTYPE
# The command groups of the collection types (their commands answer WRONGTYPE for a key
# of another type, a string included, before anything else).
FAMILIES = frozenset({"hash", "set", "sorted_set", "list", "geo"})


def collection_command(name: str, arity: int, flags: tuple[str, ...], first_key: int,
                       last_key: int, step: int, group: str, summary: str,
                       since: str = "1.0.0") -> Callable[[Builder], Builder]:
    """Register a builder as the command `name` (see module docstring)."""

    reader = "readonly" in flags
    # What the command gives for a key holding a string: WRONGTYPE for the families'
    # (whatever their op, as Redis checks the type first), else as its op says.
    family = WRONGTYPE if group in FAMILIES else None

    def register(build: Builder) -> Builder:
        def handler(c: Context, args: list[bytes]) -> bytes | None:
            built = build(args, c.proto)
            if isinstance(built, bytes):
                return built
            key, op = built
            typed = family or if_string(op)
            slot = c.defer()
            if reader:
                _run_reader(c, key, op, typed, slot, args)
                return None
            # the client's later commands of other kinds on the key wait for this one
            waiter = attr_or(c, "gate_waiter", None)
            if waiter is not None:
                waiter.coll_started(key)
            if name in QUIET_IF_UNCHANGED and hasattr(slot, "unchanged"):
                op = _noting_unchanged(op, slot)
            if c.pubsub.flags & NEW:
                _run_creating(c, key, op, typed, slot, args, waiter)
                return None

            _start(c, key, op, typed, slot, args, partial(_write_done, c, slot, waiter, key))
            return None

        if reader:
            READERS.add(name)
        command(name, arity, flags, first_key, last_key, step, group, summary, since)(handler)
        BUILDERS[name] = build
        return build

    return register


# Commands whose keyspace event Redis publishes only if they changed the key (ZADD's
# "added || updated"), which their reply does not always tell (ZADD without CH).
QUIET_IF_UNCHANGED = frozenset({"zadd", "zincrby", "geoadd"})


def _noting_unchanged(op: Op, slot: Any) -> Op:
    """The op, telling a notifying command's slot (notify._Watched) when it wrote
    nothing. Known where this node runs it; a command forwarded to another replica
    publishes as its reply says."""

    @wraps(op)  # (its attributes: on_string's, scan_order's)
    def noted(v: KeyView) -> Any:
        out = op(v)
        if not v.wrote():
            slot.unchanged()
        return out

    return noted


# The callbacks below are module functions bound with partial, not closures: compiled,
# closures that refer to each other (a lambda calling `done`) are held in their shared
# environment, a reference cycle that kept each command's reply (an HGETALL's, in EXEC
# or a script) until the cyclic collector ran.


def _start(c: Context, key: bytes, op: Op, typed: Any, slot: Any, args: list[bytes],
           done: Callable[[Result], None],
           wrong: Callable[[], None] | None = None) -> None:
    """Run `op` on `key` once its type is known to suit (heldtypes.run_typed), `done`
    taking its result; `wrong`, if given, instead of `done((None, typed))` when the key
    holds a string."""
    run_typed(c.node, key, typed, partial(_run_op, c, key, op, done, args, slot),
              partial(done, (None, typed)) if wrong is None else wrong, c.r)


def _run_op(c: Context, key: bytes, op: Op, done: Callable[[Result], None],
            args: list[bytes], slot: Any) -> None:
    c.node.coll.run(key, op, done, (args, c.proto), c.r, c.w,
                    progress=attr_or(slot, "touch", None))


def _write_done(c: Context, slot: Any, waiter: Any, key: bytes, result: Result) -> None:
    deliver(c, slot, result)
    if waiter is not None:
        waiter.coll_done(key)


def _run_reader(c: Context, key: bytes, op: Op, typed: Any, slot: Any, args: list[bytes]
                ) -> None:
    """A read command: its key's lookup counts as a keyspace hit or miss here when this
    node runs it (`looked_up`); where another replica coordinates it, there."""
    found: list[bool] = []
    done = partial(_read_done, c, key, slot, found)
    _start(c, key, _finding(op, found), typed, slot, args, done,
           partial(_read_wrong, found, done, typed))


def _finding(op: Op, found: list[bool]) -> Op:
    @wraps(op)  # (its attributes: on_string's, scan_order's)
    def counted(v: KeyView) -> Any:
        found.append(v.type() is not None)
        return op(v)

    return counted


def _read_done(c: Context, key: bytes, slot: Any, found: list[bool], result: Result) -> None:
    if found and result[0] is None:
        looked_up(c, key, found[0])
    deliver(c, slot, result)


def _read_wrong(found: list[bool], done: Callable[[Result], None], typed: Any) -> None:
    found.append(True)
    done((None, typed))


def _run_creating(c: Context, key: bytes, op: Op, typed: Any, slot: Any,
                  args: list[bytes], waiter: Any) -> None:
    """A write while "new" events are asked for: did it create its key? (Known where
    this node runs it; a command forwarded to another replica publishes none.)"""
    made: list[bool] = []
    _start(c, key, _making(op, made), typed, slot, args,
           partial(_creating_done, c, key, slot, made, waiter))


def _making(op: Op, made: list[bool]) -> Op:
    @wraps(op)  # (its attributes: on_string's, scan_order's)
    def noted(v: KeyView) -> Any:
        before = v.type() is None
        out = op(v)
        made.append(before and v.type() is not None)
        return out

    return noted


def _creating_done(c: Context, key: bytes, slot: Any, made: list[bool], waiter: Any,
                   result: Result) -> None:
    if made and made[0] and result[0] is None:
        created(c, key)  # before the command's own event, as in Redis
    deliver(c, slot, result)
    if waiter is not None:
        waiter.coll_done(key)


def internal_step(name: str) -> Callable[[Builder], Builder]:
    """Register a builder that only plans use (not a client command); its op returns
    plain data (bytes, ints, lists: what crosses between nodes), not a reply."""

    def register(build: Builder) -> Builder:
        BUILDERS[name] = build
        return build

    return register


def plan_command(name: str, arity: int, flags: tuple[str, ...], first_key: int,
                 last_key: int, step: int, group: str, summary: str,
                 since: str = "1.0.0", keys_of: KeysOf | None = None
                 ) -> Callable[[PlanBuilder], PlanBuilder]:
    """Register a plan builder as the command `name` (`keys_of`: where its keys are,
    when not at fixed positions; see table.py)."""

    gates = plangate.gated(name, flags)

    def register(build: PlanBuilder) -> PlanBuilder:
        def handler(c: Context, args: list[bytes]) -> bytes | None:
            keys = plangate.plan_keys(lookup(args[0]), args) if gates else []
            return start_plan(c, build(args, c.proto), keys)

        command(name, arity, flags, first_key, last_key, step, group, summary, since,
                keys_of)(handler)
        PLANS[name] = build
        return build

    return register


def start_plan(c: Context, plan: Plan | bytes, keys: list[bytes] | None = None
               ) -> bytes | None:
    """A plan command's handler, once its builder ran: an argument error is the reply at
    once; a plan runs for the client `c` and answers later, holding the gates of `keys`
    (a plan that writes them: plangate.py) meanwhile."""
    if isinstance(plan, bytes):
        return plan
    slot = c.defer()
    plangate.hold(c, keys or [], slot, lambda leave, touch: drive(
        plan, lambda step, cb: run_step(c.node, step, c.proto, cb, c.r, c.w, progress=touch),
        lambda reply: _answer(c, slot, reply, leave), touch, c.node.coll.window))
    return None


def _answer(c: Context, slot: Any, reply: Any, leave: Callable[[], None]) -> None:
    """A plan's reply, then its gates left (the next plan on its keys starts after)."""
    deliver(c, slot, (None, reply))
    leave()


Result = tuple[str | None, Any]
StepRunner = Callable[[list[bytes], Callable[[Result], None]], None]


def drive(plan: Plan, run_step: StepRunner, reply: Callable[[Any], None],
          touch: Callable[[], None] | None = None, window: StepWindow | None = None
          ) -> None:
    """Run a plan's steps one after the other (a batch's steps at the same time, as
    the node's `window` lets them start: core/stepwindow.py), then give its reply (or
    the first step's error); `touch()` at each step (the client's reply slot: the
    command is not stuck)."""
    _Driver(plan, run_step, reply, touch, window).advance(None)


# Classes, not closures: a closure handing itself on (a step's callback) is a reference
# cycle, and so, compiled, is any closure with its environment; a batch's cycles held its
# 256 steps until the collector found them (33 SORT BY of 100,000: 218,000 steps dead
# but alive, older collections of 130-270 ms walking them).
class _Driver:
    """One plan run by `drive`."""

    def __init__(self, plan: Plan, run_step: StepRunner, reply: Callable[[Any], None],
                 touch: Callable[[], None] | None, window: StepWindow | None) -> None:
        self.plan = plan
        self.run_step = run_step
        self.reply = reply
        self.touch = touch
        self.window = window

    def advance(self, result: Result | None) -> None:
        if self.touch is not None:
            self.touch()
        plan = self.plan
        try:
            if result is None:
                step = next(plan)
            elif result[0] is not None:
                plan.close()
                self.reply(error_reply(result[0]))
                return
            else:
                step = plan.send(result[1])
        except StopIteration as done:
            self.reply(done.value)
            return
        except Exception:
            # A bug in the plan: the client gets an error now, not at its timeout.
            log.exception("a plan failed")
            self.reply(error_reply(FAILED))
            return
        if isinstance(step, tuple):
            _BatchRun(step, self.run_step, self.advance).run(self.window)
        else:
            self.run_step(step, self.advance)


class _BatchRun:
    """A batch's steps run at once, or as a window lets them start; `then` gets their
    results in order, or the first error (by the batch's order) once all answered."""

    def __init__(self, steps: tuple[Step, ...], run_step: StepRunner,
                 then: Callable[[Result], None]) -> None:
        self.steps = steps
        self.run_step = run_step
        self.then = then
        self.results: list[Result | None] = [None] * len(steps)
        self.left = len(steps)
        self.window: StepWindow | None = None

    def run(self, window: StepWindow | None) -> None:
        if not self.steps:
            self._finish()
        elif window is None:
            for i in range(len(self.steps)):
                self.start(i)
        else:
            self.window = window
            window.add(Batch(self.start, len(self.steps)))

    def start(self, i: int) -> None:
        self.run_step(self.steps[i], partial(self._done, i))

    def _done(self, i: int, result: Result) -> None:
        self.results[i] = result
        self.left -= 1
        if self.window is not None:
            self.window.release()
        if self.left == 0:
            self._finish()

    def _finish(self) -> None:
        results = self.results
        for r in results:
            if r is not None and r[0] is not None:
                self.then((r[0], None))
                return
        self.then((None, [r[1] for r in results if r is not None]))


# Steps whose key is a plain quorum read at the node that runs the plan, not a
# collection command at the key's coordinator: [dyn.get, key] (SORT's BY and GET
# patterns) -> the string a GET would answer, or None for any other type.
PLAIN_READS = {b"dyn.get"}


# Steps that a runner at the plan's node may take over (heldmoves.py: a large string's
# RENAME or COPY on the plain string paths): `runner(node, args, cb, fallback, r, w)`
# answers `cb` itself and returns True, or returns False to have the step run as built;
# once it took the step it may still call `fallback(args)` for that ([]: as given).
LocalStep = Callable[[Any, list[Any], Callable[[Result], None],
                      Callable[[list[Any]], None], "int | None", "int | None"], bool]
LOCAL_STEPS: dict[bytes, LocalStep] = {}


# A step that answers None in a later loop turn (CollCoordinator.later): a plan yields
# it between two stretches of work that would together hold the node too long.
TURN = [b"dyn.turn"]

# A step that answers a place among the node's large lookup plans (core/planslots.py:
# SORT ... BY of a big key) once one is free; the plan gives it back (its `release`).
PLAN_SLOT = [b"dyn.planslot"]


def run_step(node: Any, args: list[bytes], proto: int, cb: Callable[[Result], None],
             r: int | None, w: int | None, home: bool = False,
             progress: Callable[[], None] | None = None) -> None:
    """Run one step of a plan for a client of this node; `cb((err, result))` (`home`:
    a collection step runs at the key's first up replica, core/collcoord.py;
    `progress`: told while a collection step run here moves on over turns)."""
    if args[0] == TURN[0]:
        node.coll.later(cb)
        return
    if args[0] == PLAN_SLOT[0]:
        node.coll.plan_slots.take(cb, progress)
        return
    if args[0] in PLAIN_READS:
        node.get(args[1], lambda res: cb((res[0], string_of(res[1], node.now))), r)
        return
    local = LOCAL_STEPS.get(args[0])
    # (its fallback a module function bound with partial, not a closure: compiled, a
    # closure naming a function run_step names too (`_run_built`) is kept in run_step's
    # environment, which the closure holds: a reference cycle per step of every RENAME,
    # COPY and MOVE, that held the plan's driver, its client's reply slot and its keys'
    # gates until the cyclic collector ran)
    if local is not None and local(node, args, cb, partial(
            _run_instead, node, args, proto, cb, r, w, home, progress), r, w):
        return
    _run_built(node, args, proto, cb, r, w, home, progress)


def _run_instead(node: Any, args: list[bytes], proto: int, cb: Callable[[Result], None],
                 r: int | None, w: int | None, home: bool,
                 progress: Callable[[], None] | None, instead: list[Any]) -> None:
    """A local step's fallback: the step (`instead`'s arguments, if any) as built."""
    _run_built(node, instead or args, proto, cb, r, w, home, progress)


def _run_built(node: Any, args: list[bytes], proto: int, cb: Callable[[Result], None],
               r: int | None, w: int | None, home: bool,
               progress: Callable[[], None] | None) -> None:
    """A step as its builder makes it, run at the key's coordinator."""
    built = BUILDERS[args[0].decode().lower()](args, proto)
    if isinstance(built, bytes):
        cb((None, built))
        return
    key, op = built
    typed = if_string(op)
    run_typed(node, key, typed,
              lambda: node.coll.run(key, op, lambda res: cb((res[0], whole(res[1]))),
                                    (args, proto), r, w, home, progress),
              lambda: cb((None, typed)), r)


# slicedwrite.PinnedList, interpreted, subclasses it (a compiled class refuses that
# unless it allows it).
@mypyc_attr(allow_interpreted_subclasses=True)
class Snapshot(Sequence[Any]):
    """Items an op read as they were in its turn, taken a slice at a time by the plan
    that asked for them (slicedwrite.PinnedList); listed whole when the op ran for
    another node's plan (they cross as a list)."""

    def listed(self) -> list[Any]:
        raise NotImplementedError

    def release(self) -> None:
        """The plan is done with them."""


def _crossing(result: Any) -> Any:
    """An op's result as it goes to another node: a long reply encoded, a Snapshot
    among its parts listed (and released)."""
    result = whole(result)
    if type(result) is not list or not any(isinstance(x, Snapshot) for x in result):
        return result
    out = []
    for x in result:
        if isinstance(x, Snapshot):
            items = x.listed()
            x.release()
            x = items
        out.append(x)
    return out


def run_forwarded(node: Any, payload: Any, answer: Callable[[tuple[str | None, Any]], None]
                  ) -> None:
    """Run a collection command another node forwarded to this replica."""
    args, proto = payload
    args = list(args)
    name = args[0].decode("utf-8", "replace").lower()
    build = BUILDERS.get(name)
    if build is None:
        answer(("ERR unknown forwarded command", None))
        return
    built = build(args, proto)
    if isinstance(built, bytes):
        answer((None, built))
        return
    key, op = built
    if name in READERS:
        stats = node.stats
        op = _counting(op, stats)
    node.coll.run(key, op, lambda res: answer((res[0], _crossing(res[1]))), payload)


def _counting(op: Op, stats: Any) -> Op:
    """A forwarded read command's op: its lookup counted at this coordinator."""

    @wraps(op)  # (its attributes: on_string's, scan_order's)
    def counted(v: KeyView) -> Any:
        if v.type() is not None:
            stats.keyspace_hits += 1
        else:
            stats.keyspace_misses += 1
        return op(v)

    return counted


def wrong_type(view: KeyView, type_name: str) -> bool:
    """True if the key exists and holds another type than `type_name`."""
    t = view.type()
    return t is not None and t != type_name


def typed_op(type_name: str, body: Callable[[KeyView], bytes | SlicedReply],
             missing: bytes | None = None) -> Op:
    """The op of a command on one collection type: WRONGTYPE for a key of another type,
    `missing` for no key (None: `body` runs then too, as on an empty collection), else
    `body(view)`. The checks every collection command makes first, in Redis' order."""

    def op(v: KeyView) -> bytes | SlicedReply:
        t = v.type()
        if t is None:
            if missing is not None:
                return missing
        elif t != type_name:
            return WRONGTYPE
        return body(v)

    if type_name != "string":
        on_string(op, WRONGTYPE)
    return op


def on_string(op: Op, result: Any) -> Op:
    """Mark `op` as giving `result` for a key that holds a live string, whatever its
    value (heldtypes.run_typed: then told from the key's shape, the value not read)."""
    op.if_string = result  # type: ignore[attr-defined]
    return op


def scan_order(op: Op, kind: bytes) -> Op:
    """Mark `op` as reading the scan order of `kind` (KeyView.scan): a big collection's
    is built over loop turns before it runs (core/scanorder.py)."""
    op.scan_kind = kind  # type: ignore[attr-defined]
    return op


def if_string(op: Op) -> Any:
    """What `op` gives for a key holding a live string (`on_string`), or None."""
    return attr_or(op, "if_string", None)  # (most ops have none: core/attrs.py)


# --- generic steps of plans --------------------------------------------------------------


def text_columns(v: KeyView, kind: bytes) -> tuple[list[bytes], list[Any]]:
    """The live elements of a kind and their values, counters (a hash's HINCRBY
    fields) as their decimals, as replies and copies carry them: two lists copied at C
    speed, no pair built per element."""
    names, values = v.columns(kind)
    return names, (decimals(values) if kind == rec.HASH else values)


def read_items(v: KeyView) -> tuple[str | None, list[Any]]:
    """The key's type and its items, in the type's own order: hash (field, value) pairs,
    set members, sorted-set (member, score) pairs by score, list items from the head; a
    string's value alone."""
    t = v.type()
    if t is None:
        return None, []
    if t == "string":
        sib = v.header_value()
        return t, [sib]
    # A hash or set is copied at C speed where it can be (200,000 fields: 20 ms of CPU,
    # not 45; a set's members 1 ms, not 20).
    kind = rec.KIND_OF_TYPE[t]
    if kind == rec.LIST:
        return t, v.list_values()
    if kind == rec.ZSET:
        zorder = v.zorder  # (score, member) pairs: turned in C loops (a comprehension
        # took 27% of a ZINTERCARD of two 500,000-member sets)
        return t, list(zip(map(_SECOND, zorder), map(_FIRST, zorder), strict=True))
    if kind == rec.HASH:
        return t, list(zip(*text_columns(v, kind), strict=True))
    return t, list(v.members(kind))


def write_items(v: KeyView, t: str, items: Sequence[Any]) -> None:
    """Replace the key with a collection of type `t` holding `items` (as read_items gives
    them); nothing left of what it held before."""
    if v.type() is not None:
        v.delete()
    add_items(v, t, items)


def add_items(v: KeyView, t: str, items: Sequence[Any]) -> None:
    """Add `items` (as read_items gives them) to the key's collection of type `t` (a
    list's at its tail, in their order); a key that holds none starts one."""
    kind = rec.KIND_OF_TYPE[t]
    if kind == rec.LIST:
        order = v.lorder
        if items:
            v.append_items(order[-1] if v.type() == t and order else None, list(items))
    elif not items:
        return
    elif kind == rec.ZSET:
        v.set_scores(items)
    elif kind == rec.HASH:
        v.put_many(kind, items)
    else:
        v.put_many(kind, zip(items, repeat(b"")))


def string_of(obj: Clock | None, now: int) -> bytes | None:
    """The string a GET of the key would answer (a counter as its decimal), or None: no
    such key, or a key of another type."""
    sib = objmod.read_value(obj, now)
    if sib is None or type(sib[2]) is not bytes:
        return None
    return sib[2]


@internal_step("dyn.get")
def build_get(args: list[bytes], proto: int) -> Built | bytes:
    """[dyn.get, key] -> the key's string or None (see PLAIN_READS: a node runs this
    step as a plain quorum read; this op is the same read on a view)."""

    def op(v: KeyView) -> Any:
        return v.header_value() if v.type() == "string" else None

    return args[1], op


@internal_step("dyn.type")
def build_type(args: list[bytes], proto: int) -> Built | bytes:
    """[dyn.type, key] -> [type or None, number of elements] (0 for a string): what a
    plan checks before it reads or writes, without moving the key's elements."""

    def op(v: KeyView) -> Any:
        t = v.type()
        if t is None or t == "string":
            return [t, 0]
        return [t, v.count(rec.KIND_OF_TYPE[t])]

    return args[1], on_string(op, ["string", 0])


@internal_step("dyn.read")
def build_read(args: list[bytes], proto: int) -> Built | bytes:
    """[dyn.read, key] -> [type or None, items] (read_items)."""

    def op(v: KeyView) -> Any:
        t, items = read_items(v)
        return [t, items]

    return args[1], on_string(op, ["string", []])  # (its readers want no string)


@internal_step("dyn.zread")
def build_zread(args: list[bytes], proto: int) -> Built | bytes:
    """[dyn.zread, key] -> [type or None, items]: read_items' but a sorted set's as its own
    (score, member) pairs, in order (copied at C speed, no pair made per member: the
    reader turns them a slice at a time, slicedwrite.Ranked)."""

    def op(v: KeyView) -> Any:
        t = v.type()
        items = list(v.zorder) if t == "zset" else read_items(v)[1]
        untrack(items)  # (bytes, numbers and pairs of them: no cycle, not walked by the
        # cyclic collector, which spent 50-60 ms of a turn on a young list of a million)
        return [t, items]

    return args[1], on_string(op, ["string", []])


@internal_step("dyn.members")
def build_members(args: list[bytes], proto: int) -> Built | bytes:
    """[dyn.members, key] -> [type or None, the members of a set or sorted set, in no
    particular order (no scores: ZINTERCARD's read), or [] for another type]."""

    def op(v: KeyView) -> Any:
        t = v.type()
        if t == "set" or t == "zset":
            return [t, list(v.members(rec.KIND_OF_TYPE[t]))]
        return [t, []]

    return args[1], on_string(op, ["string", []])


@internal_step("dyn.store")
def build_store(args: list[bytes], proto: int) -> Built | bytes:
    """[dyn.store, key, type, msgpack(items)] -> the number of items stored (a type of
    b"none" or no items deletes the key)."""
    key, t = args[1], args[2].decode()
    items = msgpack.unpackb(args[3], use_list=False)

    def op(v: KeyView) -> Any:
        if t == "none" or not items:
            if v.type() is not None:
                v.delete()
            return 0
        write_items(v, t, list(items))
        return len(items)

    return key, op


def store_args(key: bytes, t: str | None, items: list[Any]) -> list[bytes]:
    return [b"dyn.store", key, (t or "none").encode(), msgpack.packb(items)]
