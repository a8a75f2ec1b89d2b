"""HyperLogLog commands: PFADD PFCOUNT PFMERGE, on values in Redis' own HLL format.

An HLL is a string (`hll.py` is its codec), so `GET` returns bytes a redis-server
accepts and a value made by a redis-server works here. Unlike other strings, an HLL
never loses a concurrent update: when a key holds several live versions written
concurrently (through different nodes, or on both sides of a partition) and they are
HLLs, every command merges them register by register (the max of each register, a
join that is commutative, associative and idempotent), and PFADD and PFMERGE write
the merged HLL with a context that covers every version they read, so the versions
collapse into one that has every element.

Which versions merge: the one a plain reader sees (last writer wins) decides the
key's type. If it is an HLL, every live HLL version is merged into it and any other
string version, older, is superseded; if it is another string, the key is not an HLL
(WRONGTYPE); if it is a delete, the HLLs written concurrently with that delete are
still merged (a delete removes only what it observed).

A PFADD or PFMERGE whose write is refused because the key holds too many concurrent
versions (more PFADDs in flight than the sibling cap) reads, joins and writes again:
the join is idempotent, so a retry loses and doubles nothing, and its context covers
the versions that made the key too full.
"""

from __future__ import annotations

from ..core import clock as dvv
from ..core import obj as objmod
from ..core.clock import Clock
from ..core.shape import Unread
from ..core.writes import TOO_MANY_SIBLINGS
from ..resp import encode as resp
from . import hll
from .common import context_of, current, err
from .context import Context, Slot
from .hll import Hll
from .stringreads import read_key, read_keys, string_value
from .table import command

ERR_NOT_HLL = resp.error("WRONGTYPE Key is not a valid HyperLogLog string value.")
ERR_CORRUPT = resp.error("INVALIDOBJ Corrupted HLL object detected")
# How many times a write refused for too many siblings is read, joined and written again.
RETRIES = 8


class HllValue:
    """What a key holds as an HLL: the version a command works on (`data`, the newest
    HLL), the other live HLL versions to merge into it, and its TTL."""

    __slots__ = ("data", "others", "expire", "versions")

    def __init__(self, data: bytes, others: list[bytes], expire: int, versions: int) -> None:
        self.data = data
        self.others = others
        self.expire = expire
        self.versions = versions  # every version the object holds (deletes included)

    @property
    def merged(self) -> bool:
        return bool(self.others)

    def parse(self) -> Hll | None:
        """The HLL with every other version merged in (PFMERGE's rules: dense if any
        version is), or None if one of them is corrupt."""
        base = Hll(self.data)
        if not self.others:
            return base
        if base.registers() is None:
            return None
        others = [Hll(data) for data in self.others]
        if any(other.dense for other in others):
            if not base.to_dense() or not base.raise_to(others):
                return None
            base.invalidate()
            return base
        raw = bytearray(hll.REGISTERS)
        for other in others:
            if not other.merge_registers(raw):
                return None
        hll.merge_into(base, raw)  # sparse: register by register, as PFMERGE
        return base


def hll_value(obj: Clock | None, now: int) -> tuple[HllValue | None, bytes | None]:
    """(the key's HLL, or None for a missing key; None), or (None, the error reply)."""
    if obj is None:
        return None, None
    winner = current(obj, now)
    if winner is not None and type(winner[2]) is Unread:
        return None, ERR_NOT_HLL  # a large value: never an HLL (at most 16 KB)
    data, wrong = string_value(winner)
    if wrong is not None:
        return None, wrong
    if data is not None and not hll.is_valid(data):
        return None, ERR_NOT_HLL
    versions = [s for s in objmod.live_siblings(obj, now)
                if isinstance(s[2], bytes) and hll.is_valid(s[2])]
    if winner is not None:
        base = winner
        versions.remove(winner)
    elif versions:
        base = versions.pop(0)  # the newest HLL written concurrently with a delete
    else:
        return None, None
    # Versions equal to another one add nothing (concurrent PFCOUNTs storing the same
    # count make such versions): only distinct ones are merged.
    others = [data for data in dict.fromkeys(s[2] for s in versions) if data != base[2]]
    return HllValue(base[2], others, base[1], dvv.size(obj)), None


@command("pfadd", -2, ("write", "denyoom", "fast"), 1, 1, 1, "hyperloglog",
         "Adds elements to a HyperLogLog key. Creates the key if it doesn't exist.",
         since="2.8.9")
def cmd_pfadd(c: Context, args: list[bytes]) -> None:
    _pfadd(c, args[1], args[2:], c.defer(), RETRIES)


def _pfadd(c: Context, key: bytes, elements: list[bytes], slot: Slot, tries: int) -> None:
    node = c.node

    def read(obj: Clock | None) -> None:
        value, problem = hll_value(obj, node.now)
        if problem is not None:
            slot.set(problem)
            return
        if value is None:
            h: Hll | None = Hll(hll.empty())
            updated = 1  # a new key counts as a change
            expire = 0
        else:
            h = value.parse()
            updated = 0
            expire = value.expire
        if h is None:
            slot.set(ERR_CORRUPT)
            return
        corrupt = False
        for element in elements:
            changed = h.add(element)
            if changed < 0:
                # A corrupt sparse HLL: as in Redis, the registers set before the
                # error stay set, and the reply is the error.
                corrupt = True
                break
            updated += changed
        if updated:
            h.invalidate()
        reply = ERR_CORRUPT if corrupt else resp.ONE if updated else resp.ZERO
        if not updated and (corrupt or (value is not None and value.versions == 1)):
            slot.set(reply)  # nothing changed, and no concurrent versions to join
            return

        def written(r: tuple) -> None:
            if r[0] == TOO_MANY_SIBLINGS and tries:
                _pfadd(c, key, elements, slot, tries - 1)
                return
            slot.set(err(r[0]) if r[0] is not None else reply)

        c.put(key, context_of(obj), h.encode(), expire, written, c.w)

    read_key(c, key, slot, read, whole=False)


def _merge_registers(objs: list[Clock | None], now: int, raw: bytearray
                     ) -> list[tuple[Hll | None, int]] | bytes:
    """Merge the registers of each key's HLL into `raw`, in the keys' order (PFCOUNT of
    several keys, PFMERGE): each key's (HLL, TTL), (None, 0) for a missing key; or the
    first error in that order (a key that is not an HLL, or a corrupt one)."""
    found: list[tuple[Hll | None, int]] = []
    for obj in objs:
        value, problem = hll_value(obj, now)
        if problem is not None:
            return problem
        if value is None:
            found.append((None, 0))
            continue
        h = value.parse()
        if h is None or not h.merge_registers(raw):
            return ERR_CORRUPT
        found.append((h, value.expire))
    return found


def _count_one(c: Context, key: bytes, obj: Clock | None, slot: Slot) -> None:
    value, problem = hll_value(obj, c.node.now)
    if problem is not None:
        slot.set(problem)
        return
    if value is None:
        slot.set(resp.ZERO)
        return
    if not value.merged:
        cached = hll.cached_card(value.data)
        if cached is not None:
            slot.set(resp.integer(cached))
            return
    h = value.parse()
    card = h.count() if h is not None else None
    if card is None:
        slot.set(ERR_CORRUPT)
        return
    reply = resp.integer(card)
    if value.merged:
        slot.set(reply)  # counted from the merge; the next PFADD/PFMERGE writes it
        return
    # As Redis, store the count in the HLL's header for the next PFCOUNT. The reply
    # does not depend on that write succeeding; it only waits for it, to keep a
    # connection's commands in order.
    c.put(key, context_of(obj), hll.with_card(value.data, card), value.expire,
          lambda _: slot.set(reply), c.w)


@command("pfcount", -2, ("readonly",), 1, -1, 1, "hyperloglog",
         "Returns the approximated cardinality of the set(s) observed by the "
         "HyperLogLog key(s).", since="2.8.9")
def cmd_pfcount(c: Context, args: list[bytes]) -> None:
    node = c.node
    slot = c.defer()
    keys = args[1:]

    def counted(objs: list[Clock | None]) -> None:
        if len(keys) == 1:
            _count_one(c, keys[0], objs[0], slot)
            return
        raw = bytearray(hll.REGISTERS)
        found = _merge_registers(objs, node.now, raw)
        slot.set(found if isinstance(found, bytes) else resp.integer(hll.count_raw(raw)))

    read_keys(c, keys, slot, counted, whole=False)


@command("pfmerge", -2, ("write", "denyoom"), 1, -1, 1, "hyperloglog",
         "Merges one or more HyperLogLog values into a single key.", since="2.8.9")
def cmd_pfmerge(c: Context, args: list[bytes]) -> None:
    _pfmerge(c, args[1:], c.defer(), RETRIES)


def _pfmerge(c: Context, keys: list[bytes], slot: Slot, tries: int) -> None:
    node = c.node
    dest = keys[0]

    def merged(objs: list[Clock | None]) -> None:
        raw = bytearray(hll.REGISTERS)
        found = _merge_registers(objs, node.now, raw)
        if isinstance(found, bytes):
            slot.set(found)
            return
        use_dense = any(h.dense for h, _ in found if h is not None)
        dest_hll, dest_expire = found[0]  # the destination is the first source
        if dest_hll is None:
            dest_hll = Hll(hll.empty())
        if use_dense and not dest_hll.to_dense():
            slot.set(ERR_CORRUPT)
            return
        hll.merge_into(dest_hll, raw)

        def written(r: tuple) -> None:
            if r[0] == TOO_MANY_SIBLINGS and tries:
                _pfmerge(c, keys, slot, tries - 1)
                return
            slot.set(err(r[0]) if r[0] is not None else resp.OK)

        c.put(dest, context_of(objs[0]), dest_hll.encode(), dest_expire, written, c.w)

    read_keys(c, keys, slot, merged, whole=False)
