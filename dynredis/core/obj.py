"""The stored object: a DVVSet clock whose values are siblings.

A sibling is `(ts, expire_at_ms, data)`:
- `ts` is the HLC timestamp of the write (orders last-writer-wins picks);
- `expire_at_ms` is an absolute expiry in wall-clock milliseconds, 0 for none;
- `data` is the value's bytes, None for a tombstone (a causal delete), or a tuple for a
  counter of the INCR family (`core/counter.py`).

Objects travel and rest as msgpack bytes; encoding is canonical (entries sorted by
actor), so two replicas holding the same object hold the same bytes and a read can
compare replicas without decoding them. A large object starts with a header
(header.py) that tells whether it is dead, since when, and its digest, without decoding
it: the functions below that take encoded bytes read that instead.
"""

from __future__ import annotations

from collections.abc import Callable
from hashlib import blake2b
from typing import Any, Final

import msgpack
import msgspec
from mypy_extensions import i64
from xxhash import xxh3_128, xxh3_128_digest

from . import clock as dvv
from . import counter
from . import header as hdr
from .clock import Actor, Clock
from .hlc import LOGICAL_BITS
from .pieces import Joined, pieces

# (timestamp, expire_at, data); data is bytes, None (a tombstone) or a counter's state
# (counter.py). Any, because compiled code checks declared types at run time.
Sibling = tuple[int, int, Any]

# Concurrent versions a key keeps. A write that would leave more than SIBLING_MAX is
# refused (writes.py: Riak's max_siblings); a merge of versions made apart (both sides
# of a partition, writes racing through different coordinators) keeps every one, so a
# key can pass the cap only by merges, and then takes no new sibling until a write
# whose context covers them resolves it. Past SIBLING_WARN a merge is counted in INFO.
SIBLING_WARN = 25
SIBLING_MAX = 100

# Encoding with msgspec: the same bytes as msgpack's Packer(use_bin_type=True) for every
# value we store or send (property-tested in tests/unit/test_obj.py, so versions written
# before compare equal), in 2-3x less time. Decoding stays msgpack's: it gives tuples.
pack: Final = msgspec.msgpack.Encoder().encode
_unpackb: Final = msgpack.unpackb
# The same in C where it is built (csrc/peerframe.c, also the peer frames' codec): the
# same bytes and the same tuples, without their set-up per call, and None for whatever
# it leaves to msgspec and msgpack (`packed`, `unpacked`). A coordinator decodes its own
# copy in every GET and SET, and encodes the new version of every write.
try:
    from .. import _peerframe as _codec
except ImportError:  # not built, or a pure run
    _codec = None  # type: ignore[assignment]
_native_encode: Final[Callable[[Any], bytes | None] | None] = (
    _codec.encode if _codec is not None else None)
_native_decode: Final[Callable[[Any], Any] | None] = (
    _codec.decode if _codec is not None else None)
# plain_value in C too (the same module): every GET of a string runs it, ~1,250
# instructions in compiled Python against ~600 there; plain_value_in_python is the
# fallback and the reference the tests hold it to.
_native_plain_value: Final[Callable[[bytes, int, Any], Any] | None] = (
    _codec.plain_value if _codec is not None else None)


def packed(value: Any) -> bytes:
    """`pack(value)`: msgspec's msgpack bytes, made in C where it can be."""
    if _native_encode is not None:
        body = _native_encode(value)
        if body is not None:
            return body
    return pack(value)


def unpacked(body: Any) -> Any:
    """msgpack.unpackb(body, use_list=False), decoded in C where it can be (a bytes-like
    `body`: bytes, bytearray or memoryview)."""
    if _native_decode is not None:
        got = _native_decode(body)
        if got is not None:
            return got
    return _unpackb(body, use_list=False)


# A sibling value this large is encoded as a piece of its own (core/pieces.py).
LARGE_VALUE: Final = 64 << 10


def encode(obj: Any) -> bytes:
    """Canonical bytes of an object (a header first if it is large).

    An object holding a value of LARGE_VALUE bytes or more is encoded in pieces, its
    digest taken over them, and header and pieces joined once: the same bytes as packing
    it and putting the header in front, without two copies of the value. A value may be
    a memoryview of bytes (a large value viewed where it is stored: LocalStore.encoding_in_place)
    or a pieces.Joined of such parts, encoded as their bytes would be and copied once,
    into the result."""
    if holds_large(obj):
        parts = pieces(obj, LARGE_VALUE)
        digest = xxh3_128()
        for part in parts:
            digest.update(part)
        return b"".join([hdr.make_with(*header_times(obj), digest.digest()), *parts])
    body = packed(obj)
    if len(body) < hdr.HEADED_FROM:
        return body
    return hdr.make(*header_times(obj), body) + body


def holds_large(obj: Any) -> bool:
    """Whether a sibling of `obj` holds a value of LARGE_VALUE bytes or more. Any, and
    shapes checked: collections encode clocks of other shapes (entries without values)
    through `encode` too."""
    if type(obj) is not tuple or len(obj) != 2:
        return False
    anon = obj[1]
    if type(anon) is tuple and _large_sibling(anon):
        return True
    entries = obj[0]
    if type(entries) is not tuple:
        return False
    for entry in entries:
        if type(entry) is tuple and len(entry) == 3:
            sibs = entry[2]
            if type(sibs) is tuple and _large_sibling(sibs):
                return True
    return False


def _large_sibling(sibs: tuple[Any, ...]) -> bool:
    """Whether one of `sibs` is a sibling holding LARGE_VALUE bytes or more (typed as a
    tuple: compiled code indexes it directly, where iterating an Any took a thousand
    instructions a write)."""
    for sib in sibs:
        if type(sib) is tuple and len(sib) == 3:
            data = sib[2]
            if type(data) is bytes:  # (most are: memoryview and Joined, globals, not looked up)
                if len(data) >= LARGE_VALUE:
                    return True
            elif type(data) is memoryview or type(data) is Joined:
                return True
    return False


def decode(data: bytes) -> Clock:
    """An object from `encode`'s bytes (tuples throughout)."""
    body: Any = memoryview(data)[hdr.SIZE:] if data[0] == hdr.MAGIC else data
    entries, anon = unpacked(body)
    return (entries, anon)


# An object's shape with each sibling's data left undecoded (msgspec.Raw: a view of the
# input, not a copy): see decode_clock.
_RawSibling = tuple[int, int, msgspec.Raw]
_clock_only = msgspec.msgpack.Decoder(
    tuple[tuple[tuple[bytes, int, tuple[_RawSibling, ...]], ...], tuple[_RawSibling, ...]])


def decode_clock(data: Any) -> Clock | None:
    """What a write superseding everything in an encoded object needs of it (its
    actors, counters and timestamps), without decoding or copying its values: `data`
    may be a view of the stored bytes (valid during the call only). Siblings come back
    with None for data; that is enough for dvv.overwrite, max_ts and the actor, which
    replace every entry's values. None if the object has anonymous siblings (an
    overwrite keeps them, so they need decoding)."""
    if data[0] == hdr.MAGIC:
        data = memoryview(data)[hdr.SIZE:]
    try:
        entries, anon = _clock_only.decode(data)
    except msgspec.MsgspecError:
        return None  # not this shape: decode it all
    if anon:
        return None
    return (tuple((actor, n, tuple((sib[0], sib[1], None) for sib in sibs))
                  for actor, n, sibs in entries), ())


def digest(data: bytes) -> bytes:
    """A short fingerprint of an encoded object (to confirm what a peer stored); a
    large object's is in its header."""
    if hdr.is_headed(data):
        return hdr.digest(data)
    return blake2b(data, digest_size=16).digest()


def fingerprint(data: bytes) -> bytes:
    """What stands for an encoded object in a hash (anti-entropy's trees): its header if
    it has one (the header holds the body's digest), else its bytes."""
    return data[: hdr.SIZE] if hdr.is_headed(data) else data


def same(a: bytes, b: bytes) -> bool:
    """Whether two encoded objects are the same object (large ones by their headers)."""
    if hdr.is_headed(a) and hdr.is_headed(b):
        return a[: hdr.SIZE] == b[: hdr.SIZE]
    return a == b


def header_times(obj: Clock) -> tuple[int, int, int]:
    """(live, dead, reads) for a header: see header.py."""
    live = 0
    dead = 0
    for sib in dvv.values(obj):
        if sib[2] is None:
            moment = sib[0] >> LOGICAL_BITS
        else:
            moment = sib[1]
            if not moment:
                live = hdr.FOREVER
            elif moment > live:
                live = moment
        if moment > dead:
            dead = moment
    w = winner(obj)
    reads = 0
    if w is not None and w[0][2] is not None:
        reads = w[0][1] or hdr.FOREVER
    return live, dead, reads


def dead_since_enc(data: bytes, now_ms: int) -> int | None:
    """`dead_since` of an encoded object (a large one's header, or the first
    header.HEADED_FROM bytes of it, is enough)."""
    if hdr.is_headed(data):
        live, dead, _ = hdr.times(data)
        return None if live > now_ms else dead
    return dead_since(decode(data), now_ms)


def read_expiry(data: bytes, now_ms: int) -> int | None:
    """What a plain GET of this encoded object sees: None for nothing, else the
    value's expiry (0: none). A large object's header is enough."""
    if hdr.is_headed(data):
        reads = hdr.times(data)[2]
        if reads <= now_ms:
            return None
        return 0 if reads == hdr.FOREVER else reads
    sib = read_value(decode(data), now_ms)
    return None if sib is None else sib[1]


# reads_until's moment for a value that never expires: past every expiry (ms since the
# epoch) and a short int in compiled code, where header.FOREVER (2**64 - 1) is a boxed
# int that each comparison and return takes a slow call for (the key counts compare it
# a few times per put, on every replica).
NEVER: Final = (1 << 62) - 1


def reads_until(data: bytes) -> int:
    """Until when a plain GET sees a value in this encoded object (a large one's header
    is enough): 0 never (a tombstone), NEVER if it does not expire, else its
    expiry. `read_expiry(data, now)` is None exactly when this is at or before `now`.
    The store asks it twice per write (keycounts.py): a plain write's object is read
    where it lies, any other decoded."""
    if hdr.is_headed(data):
        reads = hdr.times(data)[2]
        return NEVER if reads == hdr.FOREVER else reads
    plain = _plain_reads_until(data)
    if plain >= 0:
        return plain
    return reads_of(decode(data))


def reads_of(obj: Clock) -> int:
    """`reads_until` of a decoded object (of its encoding, `encode(obj)`): a writer or a
    merge that holds the object decoded hands it to the store, which then does not read
    it from the bytes again."""
    entries = obj[0]
    if not obj[1] and len(entries) == 1:
        vals = entries[0][2]
        if len(vals) == 1:  # one value, no sibling (every plain write's object)
            sib = vals[0]
            if sib[2] is None:
                return 0
            expiry: int = sib[1]
            return expiry or NEVER
    w = winner(obj)
    if w is None or w[0][2] is None:
        return 0
    return w[0][1] or NEVER


def _plain_reads_until(b: bytes) -> int:
    """reads_until of the object every plain write makes (`_plain_layout`'s) read from
    its bytes, in a tenth of a decode's time; -1 for any other object."""
    _, i, j, end = _plain_layout(b)
    if i < 0:
        return -1
    if end < 0:
        return 0  # a tombstone
    reads = _uint_at(b, i, j)
    return reads if reads else NEVER


class NotPlain:
    """What `plain_value` answers for an object not of the plain shape (decode it
    instead): an object of its own, not a tuple, which compiled code would hold unboxed
    and box anew at each use (so that `is` never matched it)."""

    __slots__ = ()


NOT_PLAIN: Final = NotPlain()


def plain_value(b: bytes, now_ms: int) -> Sibling | NotPlain | None:
    """`read_value(decode(b), now_ms)` of the object every plain write makes (one actor,
    one sibling holding bytes or a tombstone, no anonymous sibling), read from its bytes:
    a GET's object is seldom anything else, and decoding it into a clock of nested
    tuples, then walking them for the winner, cost about a thousand instructions more.
    NOT_PLAIN for any other object (siblings, counters, a collection's header, a large
    object's header): the caller decodes it."""
    native = _native_plain_value
    if native is not None:
        return native(b, now_ms, NOT_PLAIN)  # type: ignore[no-any-return]
    return plain_value_in_python(b, now_ms)


def plain_value_in_python(b: bytes, now_ms: int) -> Sibling | NotPlain | None:
    """`plain_value` in Python."""
    t, i, j, end = _plain_layout(b)
    if i < 0:
        return NOT_PLAIN
    if end < 0:
        return None  # a tombstone
    expiry = _uint_at(b, i, j)
    if expiry and expiry <= now_ms:
        return None
    c = b[j]  # the data's bin header: 0xC4, 0xC5 or 0xC6 (`_skip_bin` found one)
    at: i64 = j + 2 if c == 0xC4 else (j + 3 if c == 0xC5 else j + 5)
    return (_uint_at(b, t, i), expiry, b[at:end])


def _plain_layout(b: bytes) -> tuple[i64, i64, i64, i64]:
    """Where, in the bytes of the object every plain write makes (`encode`'s
    [[[actor, counter, [[ts, expiry, data]]]], []]), its timestamp starts (t), its
    expiry starts (i) and ends (j: the data starts), and where its data ends (-1: a
    tombstone); (-1, -1, -1, -1) for any other object.
    Positions are i64 (plain C integers in compiled code: as ints, each sum and
    comparison was a call, ~550 instructions a read)."""
    n: i64 = len(b)
    if n < 8 or b[0] != 0x92 or b[1] != 0x91 or b[2] != 0x93:
        return -1, -1, -1, -1
    t = _skip_bin(b, 3)  # actor
    if t < 0:
        return -1, -1, -1, -1
    t = _uint_end(b, t)  # counter
    if t < 0 or t + 2 > n or b[t] != 0x91 or b[t + 1] != 0x93:
        return -1, -1, -1, -1
    t += 2
    i = _uint_end(b, t)  # timestamp
    if i < 0:
        return -1, -1, -1, -1
    j = _uint_end(b, i)  # expiry
    if j < 0 or j >= n:  # (bytes cut after the expiry: no data)
        return -1, -1, -1, -1
    end: i64 = j + 1
    if b[j] != 0xC0:  # (0xC0: a tombstone)
        end = _skip_bin(b, j)
    if end < 0 or end + 1 != n or b[end] != 0x90:
        return -1, -1, -1, -1
    return t, i, j, (end if b[j] != 0xC0 else -1)


def _uint_at(b: bytes, i: i64, j: i64) -> int:
    """The msgpack unsigned integer at [i, j), its bytes added up one by one: compiled,
    int.from_bytes of a slice (a slice made, a method looked up and called) cost about
    700 instructions, every GET's timestamp among them."""
    c = b[i]
    if c < 0x80:
        return c
    value = 0
    k = i + 1
    while k < j:
        value = (value << 8) | b[k]
        k += 1
    return value


def _uint_end(b: bytes, i: i64) -> i64:
    """Where the msgpack unsigned integer at `i` ends; -1 if there is none there."""
    n: i64 = len(b)
    if i >= n:
        return -1
    c = b[i]
    end: i64 = -1
    if c < 0x80:
        end = i + 1
    elif c == 0xCC:
        end = i + 2
    elif c == 0xCD:
        end = i + 3
    elif c == 0xCE:
        end = i + 5
    elif c == 0xCF:
        end = i + 9
    else:
        return -1
    return end if end <= n else -1


def _skip_bin(b: bytes, i: i64) -> i64:
    """Where the msgpack bin at `i` ends; -1 if there is none there."""
    n: i64 = len(b)
    if i + 2 > n:
        return -1
    c = b[i]
    end: i64 = -1
    if c == 0xC4:
        end = i + 2 + b[i + 1]
    elif c == 0xC5 and i + 3 <= n:
        end = i + 3 + int.from_bytes(b[i + 1:i + 3], "big")
    elif c == 0xC6 and i + 5 <= n:
        end = i + 5 + int.from_bytes(b[i + 1:i + 5], "big")
    else:
        return -1
    return end if end <= n else -1


# Objects up to this size identify themselves by their bytes, larger ones by a digest:
# comparing a hundred bytes costs nothing, hashing them about as much as decoding.
INLINE_IDENTITY = 512


def identity(data: bytes) -> bytes:
    """What names an encoded object exactly, for `is_identity`: its bytes if small, else
    a digest: a large object's header is enough."""
    return data if len(data) <= INLINE_IDENTITY and not hdr.is_headed(data) else _named(data)


def is_identity(data: bytes, ident: bytes) -> bool:
    """Whether `ident` (from `identity`) names exactly the object `data`.

    A small `data` compares as bytes. A larger one compares by digest; `ident` then
    matches only if it is that digest (a small object's bytes equal it only by accident
    of 128-bit hashing, as a large object's header digest, header.py)."""
    if len(data) <= INLINE_IDENTITY:
        return data == ident
    return _named(data) == ident


def _named(data: bytes) -> bytes:
    """The digest that names an object: its header's if it has one, else XXH3-128 of
    its bytes. Not `digest`'s blake2b: a 1 KB object took 2.6 us to hash that way, three
    times per overwrite of a 1 KB value (the coordinator names its base, each replica
    the copy it holds), against 0.1 us. A peer of an earlier build names objects of up
    to HEADED_FROM bytes by blake2b: the names then never match, and a replica merges
    the write as it would any write not built on its copy (decoding both), which
    is slower, not wrong."""
    if hdr.is_headed(data):
        return hdr.digest(data)
    return xxh3_128_digest(data)


def sibling(ts: int, data: bytes | None, expire_at: int = 0) -> Sibling:
    return (ts, expire_at, data)


def is_live(sib: Sibling, now_ms: int) -> bool:
    """A sibling that reads as a value: not a tombstone, not expired."""
    return sib[2] is not None and (sib[1] == 0 or sib[1] > now_ms)


def winner(obj: Clock) -> tuple[Sibling, Actor | None, int] | None:
    """The last-writer-wins sibling: highest HLC timestamp, actor id breaking ties.

    Returns (sibling, actor, index in the actor's value list) or None when empty.
    """
    entries = obj[0]
    if not obj[1] and len(entries) == 1:
        vals = entries[0][2]
        if len(vals) == 1:  # one value, no sibling (every plain write's object)
            return vals[0], entries[0][0], 0
    best: tuple[Sibling, Actor | None, int] | None = None
    best_key: tuple[int, bytes] | None = None
    for idx, sib in enumerate(obj[1]):
        key = (sib[0], b"")
        if best_key is None or key > best_key:
            best, best_key = (sib, None, idx), key
    for actor, _, vals in entries:
        for idx, sib in enumerate(vals):
            key = (sib[0], actor)
            if best_key is None or key > best_key:
                best, best_key = (sib, actor, idx), key
    return best


def read_value(obj: Clock | None, now_ms: int) -> Sibling | None:
    """What a plain GET sees: the LWW sibling, or None if it is a tombstone or expired.

    A counter reads as its decimal string, joined with its concurrent increments.
    """
    if obj is None:
        return None
    w = winner(obj)
    if w is None or not is_live(w[0], now_ms):
        return None
    sib = w[0]
    if counter.is_counter(sib[2]):
        state = counter.merged(sib[2], (s[2] for s in dvv.values(obj) if is_live(s, now_ms)))
        return (sib[0], sib[1], b"%d" % counter.value(state))
    return sib


def counter_state(obj: Clock | None, now_ms: int) -> tuple | None:
    """The merged counter a plain reader sees, or None if the winner is not a counter."""
    if obj is None:
        return None
    w = winner(obj)
    if w is None or not is_live(w[0], now_ms) or not counter.is_counter(w[0][2]):
        return None
    return counter.merged(w[0][2], (s[2] for s in dvv.values(obj) if is_live(s, now_ms)))


def live_siblings(obj: Clock | None, now_ms: int) -> list[Sibling]:
    """Every live sibling, newest first (what GETCTX shows); counters as their value."""
    if obj is None:
        return []
    sibs = [s for s in dvv.values(obj) if is_live(s, now_ms)]
    sibs.sort(key=lambda s: s[0], reverse=True)
    return [(s[0], s[1], b"%d" % counter.value(s[2])) if counter.is_counter(s[2]) else s
            for s in sibs]


def too_many_siblings(new: Clock, held: Clock | None) -> bool:
    """Whether the write that made `new` from the replica's `held` must be refused: it
    would leave more than SIBLING_MAX siblings, and more than the key holds already (a
    write that resolves some siblings is taken even above the cap, where merges may
    have brought a key)."""
    size = dvv.size(new)
    return size > SIBLING_MAX and (held is None or size > dvv.size(held))


def max_ts(obj: Clock) -> int:
    """The largest HLC timestamp among the siblings (0 if none)."""
    best = 0
    for sib in dvv.values(obj):
        if sib[0] > best:
            best = sib[0]
    return best


def is_dead(obj: Clock, now_ms: int) -> bool:
    """True when no sibling reads as a value (all tombstones or expired)."""
    return not any(is_live(s, now_ms) for s in dvv.values(obj))


def dead_since(obj: Clock, now_ms: int) -> int | None:
    """When an object stopped holding any live value (wall ms), or None if it still does.

    A tombstone dies when written, an expired value when it expires; the object is
    dead from the latest of those moments.
    """
    latest = 0
    for sib in dvv.values(obj):
        if is_live(sib, now_ms):
            return None
        moment = sib[1] if sib[2] is not None else sib[0] >> LOGICAL_BITS
        latest = max(latest, moment)
    return latest
