"""Dotted version vector sets (DVVSet), after Almeida et al. and riak_kv's dvvset.erl.

A clock is `(entries, anonymous)`:

- `entries` is a tuple of `(actor, counter, values)` sorted by actor. `counter` is the
  highest event of `actor` in the causal past; `values` are the concurrent values of
  that actor's most recent events, newest first: value `k` (0-based) has the dot
  `(actor, counter - k)`.
- `anonymous` holds values with no dot yet (a client's new value before a node
  stamps it with an event).

Everything here is a pure function of immutable tuples, so clocks can be shared,
cached, compared and hashed freely. A version vector (what clients get as a context)
is a tuple of `(actor, counter)` pairs sorted by actor.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any

import msgpack

Actor = bytes
Value = Hashable
Entry = tuple[Actor, int, tuple[Any, ...]]
Clock = tuple[tuple[Entry, ...], tuple[Any, ...]]
VV = tuple[tuple[Actor, int], ...]

EMPTY: Clock = ((), ())


def new(values: Iterable[Any]) -> Clock:
    """A clock holding `values` with no causal past (anonymous values)."""
    return ((), tuple(values))


def new_with_context(vv: VV, value: Any) -> Clock:
    """A client's new `value`, written having seen the versions in `vv`."""
    return (tuple((a, n, ()) for a, n in sorted(vv)), (value,))


def join(clock: Clock) -> VV:
    """The version vector summarising the clock's whole causal past."""
    return tuple((a, n) for a, n, _ in clock[0])


def covers(vv: VV, seen: VV) -> bool:
    """True if the causal past `vv` includes every event of `seen`."""
    mine = dict(vv)
    return all(mine.get(a, 0) >= n for a, n in seen)


def values(clock: Clock) -> list[Any]:
    """All concurrent values (siblings): anonymous ones first, then per actor."""
    out = list(clock[1])
    for _, _, vals in clock[0]:
        out.extend(vals)
    return out


def dotted_values(clock: Clock) -> list[tuple[Actor | None, int, Any]]:
    """Every value with its dot `(actor, counter)`; anonymous values get `(None, 0)`."""
    out: list[tuple[Actor | None, int, Any]] = [(None, 0, v) for v in clock[1]]
    for actor, n, vals in clock[0]:
        for k, v in enumerate(vals):
            out.append((actor, n - k, v))
    return out


def size(clock: Clock) -> int:
    """Number of siblings."""
    return len(clock[1]) + sum(len(vals) for _, _, vals in clock[0])


def ids(clock: Clock) -> list[Actor]:
    return [a for a, _, _ in clock[0]]


def _greater(e1: tuple[Entry, ...], e2: tuple[Entry, ...]) -> bool:
    """True if the causal past `e1` strictly dominates `e2`."""
    strict = False
    i = j = 0
    len1, len2 = len(e1), len(e2)
    while i < len1 and j < len2:
        a1, n1, _ = e1[i]
        a2, n2, _ = e2[j]
        if a1 == a2:
            if n1 > n2:
                strict = True
            elif n1 < n2:
                return False
            i += 1
            j += 1
        elif a1 < a2:
            strict = True
            i += 1
        else:
            return False
    if j < len2:
        return False
    return strict or i < len1


def less(c1: Clock, c2: Clock) -> bool:
    """True if `c1`'s causal past is strictly contained in `c2`'s."""
    return _greater(c2[0], c1[0])


def equal(c1: Clock, c2: Clock) -> bool:
    """True if both clocks have the same causal past (values are not compared)."""
    return join(c1) == join(c2)


def _merge_entry(a: Actor, n1: int, l1: tuple, n2: int, l2: tuple) -> Entry:
    ll1, ll2 = len(l1), len(l2)
    if n1 >= n2:
        if n1 - ll1 >= n2 - ll2:
            return (a, n1, l1)
        return (a, n1, l1[: n1 - n2 + ll2])
    if n2 - ll2 >= n1 - ll1:
        return (a, n2, l2)
    return (a, n2, l2[: n2 - n1 + ll1])


def _sync_entries(e1: tuple[Entry, ...], e2: tuple[Entry, ...]) -> tuple[Entry, ...]:
    if not e1:
        return e2
    if not e2:
        return e1
    out: list[Entry] = []
    i = j = 0
    len1, len2 = len(e1), len(e2)
    while i < len1 and j < len2:
        h1 = e1[i]
        h2 = e2[j]
        if h1[0] < h2[0]:
            out.append(h1)
            i += 1
        elif h1[0] > h2[0]:
            out.append(h2)
            j += 1
        else:
            out.append(h1 if h1 is h2 else _merge_entry(h1[0], h1[1], h1[2], h2[1], h2[2]))
            i += 1
            j += 1
    if i < len1:
        out.extend(e1[i:])
    if j < len2:
        out.extend(e2[j:])
    return tuple(out)


def sync(c1: Clock, c2: Clock) -> Clock:
    """The merge of two replicas' clocks: every value not dominated by the other side."""
    if c1 is c2 or c1 == c2:
        return c1
    a1, a2 = c1[1], c2[1]
    if not a1 and not a2:
        anon: tuple = ()
    elif less(c1, c2):
        anon = a2
    elif less(c2, c1):
        anon = a1
    else:
        anon = a1 + tuple(v for v in a2 if v not in a1)
    return (_sync_entries(c1[0], c2[0]), anon)


def sync_all(clocks: Sequence[Clock]) -> Clock:
    """Sync a list of clocks (order does not matter)."""
    out = EMPTY
    for c in clocks:
        out = sync(out, c)
    return out


def _event(entries: tuple[Entry, ...], actor: Actor, value: Any) -> tuple[Entry, ...]:
    out: list[Entry] = []
    for idx, (a, n, vals) in enumerate(entries):
        if a == actor:
            out.append((a, n + 1, (value, *vals)))
            out.extend(entries[idx + 1 :])
            return tuple(out)
        if a > actor:
            out.append((actor, 1, (value,)))
            out.extend(entries[idx:])
            return tuple(out)
        out.append((a, n, vals))
    out.append((actor, 1, (value,)))
    return tuple(out)


def update(client: Clock, replica: Clock | None, actor: Actor) -> Clock:
    """Stamp the client's single new value with a new event of `actor`.

    `client` comes from `new_with_context(vv, value)`; `replica` is what the
    coordinating node holds. Everything the client's context covers is discarded;
    anything concurrent with it stays as a sibling.
    """
    (value,) = client[1]
    if replica is None:
        return (_event(client[0], actor, value), ())
    entries, anon = sync((client[0], ()), replica)
    return (_event(entries, actor, value), anon)


def overwrite(replica: Clock | None, actor: Actor, value: Any) -> Clock:
    """`update(new_with_context(join(replica), value), replica, actor)`, computed directly.

    The plain-SET path: the new value supersedes everything the replica holds.
    """
    if replica is None:
        return (((actor, 1, (value,)),), ())
    out: list[Entry] = []
    placed = False
    for a, n, _ in replica[0]:
        if not placed and a >= actor:
            placed = True
            if a == actor:
                out.append((a, n + 1, (value,)))
                continue
            out.append((actor, 1, (value,)))
        out.append((a, n, ()))
    if not placed:
        out.append((actor, 1, (value,)))
    return (tuple(out), replica[1])


def overwrite_at(replica: Clock | None, actor: Actor, counter: int, value: Any) -> Clock:
    """`overwrite` with the event numbered `counter` rather than the next of the
    replica's own entry for `actor`.

    For a collection's element records, whose events are numbered per key across all
    elements (`dotset.py`): an actor's entry in one element then skips the numbers it
    used for other elements. `counter` must exceed the replica's entry for `actor`."""
    if replica is None:
        return (((actor, counter, (value,)),), ())
    out: list[Entry] = []
    placed = False
    for a, n, _ in replica[0]:
        if not placed and a >= actor:
            placed = True
            if a == actor:
                if counter <= n:
                    raise ValueError("event counter must grow")
                out.append((a, counter, (value,)))
                continue
            out.append((actor, counter, (value,)))
        out.append((a, n, ()))
    if not placed:
        out.append((actor, counter, (value,)))
    return (tuple(out), replica[1])


def map_values(fn: Callable[[Any], Any], clock: Clock) -> Clock:
    """Apply `fn` to every value, keeping the causal structure."""
    entries = tuple((a, n, tuple(fn(v) for v in vals)) for a, n, vals in clock[0])
    return (entries, tuple(fn(v) for v in clock[1]))


def keep_only(clock: Clock, actor: Actor | None, index: int) -> Clock:
    """Keep one value (at `index` of `actor`'s list, or anonymous if actor is None),
    dropping every other sibling while keeping the whole causal past.

    The kept value takes its actor's latest dot, as dvvset:lww does.
    """
    if actor is None:
        return new_with_context(join(clock), clock[1][index])
    entries = tuple(
        (a, n, (vals[index],)) if a == actor else (a, n, ()) for a, n, vals in clock[0]
    )
    return (entries, ())


# --- context tokens -----------------------------------------------------------------


class BadContext(ValueError):
    """A client handed back a context token we did not produce."""


class ContextTooLong(BadContext):
    """A context token longer than MAX_CONTEXT_BYTES (refused before decoding)."""


# The longest context token taken. A context has one entry per actor that wrote the
# key: an actor is a node identity (8 bytes) and a 4-byte life of the key, so a key's
# clock names the few nodes that coordinated its writes, and a new identity for each
# unclean restart (a handful over a cluster's life). An entry takes at most 32 bytes of
# token (a 12-byte actor and a 64-bit counter, in msgpack, in base64): 64 KiB holds
# 2,000 writers, far more than any real key, and refusing by length keeps a hostile
# token from costing anything (a 26.5 MB one took 4 s to decode and sort).
MAX_CONTEXT_BYTES = 64 * 1024


def encode_vv(vv: VV) -> bytes:
    """An opaque, printable token for a version vector (empty vector: empty token)."""
    if not vv:
        return b""
    return base64.urlsafe_b64encode(msgpack.packb(vv)).rstrip(b"=")


def decode_vv(token: bytes) -> VV:
    """Parse a token from `encode_vv`; raise BadContext if it is not one (ContextTooLong,
    before any decoding, if it is longer than MAX_CONTEXT_BYTES)."""
    if not token:
        return ()
    if len(token) > MAX_CONTEXT_BYTES:
        raise ContextTooLong("context too long")
    try:
        raw = base64.urlsafe_b64decode(token + b"=" * (-len(token) % 4))
        data = msgpack.unpackb(raw, use_list=False)
        vv = tuple((a, n) for a, n in data)
    except Exception as exc:  # any malformed token is the client's error
        raise BadContext("invalid context") from exc
    # Only what encode_vv produces: byte-string actors, non-negative integer counters.
    # (No coercion: bytes(<int>) would turn an integer into a zero-filled actor id of
    # that length, letting a token allocate arbitrary memory.)
    if (
        not isinstance(data, tuple)
        or any(type(a) is not bytes or type(n) is not int or n < 0 for a, n in vv)
        or len({a for a, _ in vv}) != len(vv)
    ):
        raise BadContext("invalid context")
    return tuple(sorted(vv))
