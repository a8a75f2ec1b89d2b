"""Peer message framing: a batch of messages is one RESP bulk string holding msgpack.

Peers share the client port and RESP framing; once a connection has passed the
DYN.PEER handshake (peerauth.py) it carries only these frames, which hiredis splits and
msgpack decodes. Everything a node has for one peer in one loop turn travels as one frame: one
encode, one write, one decode, however many messages it holds.

A batch of BULK_FROM bytes or more (a large value) travels in parts instead, each a
RESP array `[more, bytes]` (more: 1, or 0 for the last part), and the link sends small
frames between parts (peers.py): a heartbeat or an acknowledgement waits behind at most
a part or two of a 100 MB value, never behind all of it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import hiredis
import msgpack

from ..core import filled
from ..core.obj import packed, unpacked
from ..core.pieces import pieces

# msgspec encodes (the same bytes as msgpack, 3x faster per message: see core/obj.py);
# msgpack decodes, into tuples; both in C where it is built (obj.packed and obj.unpacked:
# csrc/peerframe.c, without their set-up per frame, about 500 instructions less a frame).
_unpackb: Final = msgpack.unpackb


try:
    from .. import _peerframe as _codec
except ImportError:  # not built, or a pure run
    _codec = None  # type: ignore[assignment]
_native_frame: Final[Callable[[Any, int], bytes | None] | None] = (
    _codec.frame if _codec is not None else None)


BULK_FROM: Final = 256 << 10  # batches this big or bigger go in parts, behind small frames
# Values this big are pieces of their own in a batch's encoding (`encode_pieces`).
PIECE_FROM: Final = 64 << 10
PART: Final = 256 << 10  # bytes of a bulk batch per part
PART_END: Final = b"\r\n"


def encode(msgs: list[tuple]) -> bytes:
    """The body of a frame carrying a list of messages."""
    return packed(msgs)


def encode_pieces(msgs: list[tuple]) -> bytes | list[bytes]:
    """`encode(msgs)`, or, when a message holds a value of PIECE_FROM bytes or more
    (at the top of a message or in a list field: a batch's items), the same bytes as
    pieces in which each such value is a piece of its own, not copied (core/pieces.py):
    a 100 MB value sent to two replicas was copied into two bodies in one event, and a
    turn's batch of 100 KB values (16 of them a pipeline, 50 clients) was encoded into
    one fresh buffer of megabytes per peer, grown by copies (a sixth of the cluster's
    CPU per 100 KB SET, most of it page faults)."""
    for msg in msgs:
        if _holds_big(msg):
            return pieces(msgs, PIECE_FROM)
    return encode(msgs)


def _holds_big(msg: tuple) -> bool:
    for field in msg:
        t = type(field)
        if t is bytes:
            if len(field) >= PIECE_FROM:
                return True
        elif t is list or t is tuple:
            for item in field:
                if type(item) is bytes and len(item) >= PIECE_FROM:
                    return True
    return False


def small_frame(msgs: list[tuple]) -> bytes | None:
    """`frame(encode(msgs))` made in one step in C, when the body is under PIECE_FROM
    bytes (so no value in it is a piece of its own) and the codec is built; None
    otherwise: then `encode_pieces` and the link frame it. Most of a turn's batches are
    small: encoding them with msgspec, looking for big values and framing them (a copy)
    took about 4,000 instructions per 3-node SET at -P 1."""
    if _native_frame is not None:
        return _native_frame(msgs, PIECE_FROM)
    return None


def frame(body: bytes) -> bytes:
    """A body as one frame (a RESP bulk string)."""
    return b"$%d\r\n%b\r\n" % (len(body), body)


def frame_head(size: int) -> bytes:
    """What precedes a body of `size` bytes sent as one frame (PART_END follows it)."""
    return b"$%d\r\n" % size


def batch(msgs: list[tuple]) -> bytes:
    """One frame carrying a list of messages."""
    data = small_frame(msgs)
    if data is not None:
        return data
    body = encode(msgs)
    return b"$%d\r\n%b\r\n" % (len(body), body)


def part_head(size: int, more: bool) -> bytes:
    """What precedes `size` bytes of a bulk batch on the wire (PART_END follows them)."""
    return b"*2\r\n:%d\r\n$%d\r\n" % (1 if more else 0, size)


class HiredisFrames:
    """A peer link's input split into frames by hiredis, where the codec's `Frames` is
    not built (the same `read`, its bodies left as bytes for `unframe`)."""

    __slots__ = ("reader",)

    def __init__(self) -> None:
        self.reader = hiredis.Reader()

    def read(self, data: bytes) -> list[Any]:
        """The frames complete so far: each a body (bytes) or a part [more, bytes]."""
        reader = self.reader
        reader.feed(data)
        out: list[Any] = []
        while True:
            item = reader.gets()
            if item is False:
                return out
            out.append(item)


def frame_reader() -> Any:
    """What splits a peer link's input into frames (PeerInbound): the codec's `Frames`,
    which decodes the small ones where they lie in the read (a tuple of messages each),
    in one call per read, where hiredis took a feed, a call per frame and one more, a
    body copied out and `unframe`'s call (about 2,000 instructions per 3-node SET at
    -P 1); or `HiredisFrames`."""
    if _codec is not None:
        return _codec.Frames()
    return HiredisFrames()


def unframe(body: bytes | bytearray | memoryview) -> tuple:
    """The messages of a frame's body."""
    return unpacked(body)  # type: ignore[no-any-return]


KEEP_GATHERED: Final = 16 << 20  # a Gather's buffer up to this size is kept for the next batch
# A bin (bytes value) of a bulk batch this big is filled in place as its parts come
# (server/filled.py), not copied out of the gathered buffer when the batch is decoded.
IN_PLACE_FROM: Final = 1 << 20
# ... and at most this big: a bin's object is made when its msgpack head arrives, before
# its bytes, so a head claiming more than any value holds (proto-max-bulk-len is 512 MB
# by default) is gathered plainly, its memory taken only as its bytes come.
IN_PLACE_MOST: Final = 1 << 30
# msgpack items of a bulk batch looked at for such bins; past them the batch is gathered
# plainly (a batch of thousands of small items is not walked an item at a time).
SCAN_MOST: Final = 4096
# What stands for a bin filled in place in the gathered buffer: msgpack's fixext 4 of
# this type, its data the bin's index (peer messages carry no ext types of their own).
PLACED: Final = 0x44
_PLACED_HEAD: Final = bytes((0xD6, PLACED))

# Bytes of each msgpack item's head after its first byte, and of its payload, by first
# byte: (head, payload) fixed, or a negative head -w: a w-byte length follows (ext: and
# a type byte). Fixed-size items without a payload: (0, 0).
_FIXED_ITEMS: Final = {0xCA: 4, 0xCB: 8, 0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8, 0xD0: 1,
                       0xD1: 2, 0xD2: 4, 0xD3: 8, 0xD4: 2, 0xD5: 3, 0xD6: 5, 0xD7: 9,
                       0xD8: 17, 0xDC: 2, 0xDD: 4, 0xDE: 2, 0xDF: 4}
_SIZED_ITEMS: Final = {0xC4: 1, 0xC5: 2, 0xC6: 4, 0xD9: 1, 0xDA: 2, 0xDB: 4, 0xC7: 1,
                       0xC8: 2, 0xC9: 4}


def item_at(buf: bytearray, i: int, size: int) -> tuple[int, int]:
    """(bytes of its head, bytes of its payload) of the msgpack item at `i` of the first
    `size` bytes of `buf`; (0, 0) if its head is not all there yet; (-1, 0) if it is no
    msgpack. Arrays and maps are their heads (their items follow as items)."""
    b = buf[i]
    if b <= 0x9F or b >= 0xE0 or b in (0xC0, 0xC2, 0xC3):
        return 1, 0  # fixint, fixmap, fixarray, nil, bool
    if b <= 0xBF:
        return 1, b & 0x1F  # fixstr
    width = _SIZED_ITEMS.get(b, 0)
    if width:
        head = 1 + width + (1 if 0xC7 <= b <= 0xC9 else 0)
        if i + head > size:
            return 0, 0
        return head, int.from_bytes(buf[i + 1 : i + 1 + width], "big")
    extra = _FIXED_ITEMS.get(b, -1)
    if extra < 0:
        return -1, 0  # 0xc1: never used
    if b >= 0xDC:
        return 1 + extra, 0  # array 16/32, map 16/32: their counts are their heads
    return 1, extra


class Gather:
    """The parts of a bulk batch, copied as they come into one buffer that is kept from
    batch to batch (up to KEEP_GATHERED bytes). A fresh buffer per batch, grown part by
    part, was fresh memory each time: a third of a replica's page faults under 100 KB
    SETs (the kernel maps and zeroes every page of it, every batch).

    A large bin (IN_PLACE_FROM bytes or more) is not gathered into the buffer but into
    a bytes object of its own, filled in place as its parts come (server/filled.py), and
    decoded as that object: decoding a 100 MB write copied it out of the buffer in one
    loop turn (55-115 ms). The buffer's items are read as they arrive to find such bins
    (up to SCAN_MOST items a batch); each is written in the buffer as a fixext standing
    for it."""

    __slots__ = ("buf", "size", "scan", "budget", "placed", "filling", "filled")

    def __init__(self) -> None:
        self.buf = bytearray()
        self.size = 0  # bytes of the batch gathered so far (the buffer may be longer)
        self.scan = 0  # where the next item to look at starts
        self.budget = SCAN_MOST if filled.AVAILABLE else 0  # items still to look at
        self.placed: list[bytes] = []  # the bins filled in place, in batch order
        self.filling: bytes | None = None  # the bin being filled, if not full yet
        self.filled = 0  # bytes of it filled

    def add(self, part: bytes) -> None:
        at = 0
        if self.filling is not None:
            at = self._fill(part, 0)
            if at == len(part):
                return
        self._put(part, at)
        if self.budget > 0:
            self._look()

    def _fill(self, part: bytes, at: int) -> int:
        """Copy what `part` holds of the bin being filled from `at`; where it ends."""
        value = self.filling
        assert value is not None
        n = min(len(part) - at, len(value) - self.filled)
        filled.fill(value, self.filled, part, at, at + n)
        self.filled += n
        if self.filled == len(value):
            self.filling = None
        return at + n

    def _put(self, data: bytes, at: int) -> None:
        """Append `data[at:]` to the batch's buffer (in place, where it has room)."""
        buf = self.buf
        size = self.size
        end = size + len(data) - at
        if end <= len(buf):
            buf[size:end] = memoryview(data)[at:] if at else data
        else:
            del buf[size:]
            buf += memoryview(data)[at:] if at else data
        self.size = end

    def _look(self) -> None:
        """Read the buffer's new items; a large bin found is placed (`_place`)."""
        buf = self.buf
        size = self.size
        i = self.scan
        while i < size and self.budget > 0:
            head, payload = item_at(buf, i, size)
            if head <= 0:
                if head < 0:
                    self.budget = 0  # no msgpack: the decoder will say so
                break
            self.budget -= 1
            if IN_PLACE_FROM <= payload <= IN_PLACE_MOST and 0xC4 <= buf[i] <= 0xC6:
                i = self._place(i, head, payload)
                if self.filling is not None:
                    break
                size = self.size
                continue
            i += head + payload
        self.scan = i

    def _place(self, i: int, head: int, n: int) -> int:
        """Move the bin of `n` bytes whose head is at `i` out of the buffer into a blank
        of its own, the rest of it to be filled as it comes; its stand-in takes its
        place. Where the next item starts."""
        value = filled.blank(n)
        start = i + head
        have = min(self.size - start, n)
        if have:
            filled.fill(value, 0, bytes(self.buf[start : start + have]), 0, have)
        after = bytes(self.buf[start + n : self.size]) if start + n < self.size else b""
        index = len(self.placed)
        self.placed.append(value)
        self.filling = value if have < n else None
        self.filled = have
        self.size = i
        self._put(_PLACED_HEAD + index.to_bytes(4, "big"), 0)
        next_item = self.size
        if after:
            self._put(after, 0)
        return next_item

    def take(self) -> tuple:
        """The batch's messages (unframe); the buffer is then empty again."""
        size = self.size
        placed = self.placed
        unfinished = self.filling is not None
        self.size = 0
        self.scan = 0
        self.budget = SCAN_MOST if filled.AVAILABLE else 0
        self.placed = []
        self.filling = None
        self.filled = 0
        buf = self.buf
        if len(buf) > KEEP_GATHERED:
            self.buf = bytearray()
        if unfinished:
            raise ValueError("a bulk batch ended inside a value")
        # The values decode as copies (bytes), or as the bins filled in place: nothing
        # keeps a view of the buffer.
        with memoryview(buf) as view, view[:size] as body:
            if placed:
                return _unpackb(body, use_list=False, ext_hook=_Placed(placed))  # type: ignore[no-any-return]
            return unframe(body)


class _Placed:
    """msgpack's ext hook for a batch with bins filled in place: each stand-in is its bin."""

    __slots__ = ("placed",)

    def __init__(self, placed: list[bytes]) -> None:
        self.placed = placed

    def __call__(self, code: int, data: bytes) -> object:
        if code == PLACED and len(data) == 4:
            return self.placed[int.from_bytes(data, "big")]
        return msgpack.ExtType(code, data)


# The version of the peer messages (their kinds and fields). A node links only with
# peers of its own version: one that sent messages the other cannot read would leave its
# requests to time out silently. 1: single acknowledgements and answers (no version
# word in the hello); 2: batched acknowledgements and answers ("pas", "gas"); 3: the
# secret is proven by challenge-response (DYN.PEER HELLO / PROOF), never sent; 4: a
# replica's refusal ("nak"), keyspace queries with their arguments as one field; 5: the
# scripts and function libraries every node holds ("rgp", "rga", "rgd", "rgt"); 6: the
# watches of blocked clients ("bw", "bc"), gossip carries zones, rings record them and a
# membership change in progress, membership changes and ownership transfers ("adm",
# "ada", "xd", "xb", "xba"), large batches in parts (`part_head`), a replica get names
# the coordinator's large copy ("g" have), pub/sub across the cluster ("pp", "ppa", "pq",
# "pqa", "pne"), numbered databases (a handed-over command's database, keyspace queries
# of one database); 7: a collection write's part ("cw", "cwa": a removal's records sent
# over turns); 8: a whole key's sync answer in parts ("csp", "csa" parts); 9: a handed-over
# plan's progress ("afp"); 10: a turn's replica puts to a peer in one message ("ps" replaces
# "p"); 11: a collection sync names the asker's large header ("cs" have: not sent back).
# The kinds and their fields are core/messages.py's table.
PEER_PROTOCOL = 11
