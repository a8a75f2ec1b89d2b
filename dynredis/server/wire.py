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

from typing import Final

import msgpack
import msgspec

from ..core.pieces import pieces

# msgspec encodes (the same bytes as msgpack, 3x faster per message: see core/obj.py);
# msgpack decodes, into tuples.
_pack: Final = msgspec.msgpack.Encoder().encode
_unpackb: Final = msgpack.unpackb


BULK_FROM: Final = 256 << 10  # batches this big or bigger go in parts, behind small frames
# Values this big are pieces of their own in a batch's encoding (`encode_pieces`).
PIECE_FROM: Final = 64 << 10
PART: Final = 256 << 10  # bytes of a bulk batch per part
PART_END: Final = b"\r\n"


def encode(msgs: list[tuple]) -> bytes:
    """The body of a frame carrying a list of messages."""
    return _pack(msgs)


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
    return _pack(msgs)


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


def frame(body: bytes) -> bytes:
    """A body as one frame (a RESP bulk string)."""
    return b"$%d\r\n%b\r\n" % (len(body), body)


def frame_head(size: int) -> bytes:
    """What precedes a body of `size` bytes sent as one frame (PART_END follows it)."""
    return b"$%d\r\n" % size


def batch(msgs: list[tuple]) -> bytes:
    """One frame carrying a list of messages."""
    body = _pack(msgs)
    return b"$%d\r\n%b\r\n" % (len(body), body)


def part_head(size: int, more: bool) -> bytes:
    """What precedes `size` bytes of a bulk batch on the wire (PART_END follows them)."""
    return b"*2\r\n:%d\r\n$%d\r\n" % (1 if more else 0, size)


def unframe(body: bytes | bytearray | memoryview) -> tuple:
    return _unpackb(body, use_list=False)


KEEP_GATHERED: Final = 16 << 20  # a Gather's buffer up to this size is kept for the next batch


class Gather:
    """The parts of a bulk batch, copied as they come into one buffer that is kept from
    batch to batch (up to KEEP_GATHERED bytes). A fresh buffer per batch, grown part by
    part, was fresh memory each time: a third of a replica's page faults under 100 KB
    SETs (the kernel maps and zeroes every page of it, every batch)."""

    __slots__ = ("buf", "size")

    def __init__(self) -> None:
        self.buf = bytearray()
        self.size = 0  # bytes of the batch gathered so far (the buffer may be longer)

    def add(self, part: bytes) -> None:
        buf = self.buf
        size = self.size
        end = size + len(part)
        if end <= len(buf):
            buf[size:end] = part  # in place: the same length replaced
        else:
            del buf[size:]
            buf += part
        self.size = end

    def take(self) -> tuple:
        """The batch's messages (unframe); the buffer is then empty again."""
        size = self.size
        self.size = 0
        buf = self.buf
        if len(buf) > KEEP_GATHERED:
            self.buf = bytearray()
        # The values decode as copies (bytes): nothing keeps a view of the buffer.
        with memoryview(buf) as view, view[:size] as body:
            return unframe(body)


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
# of one database). The kinds and their fields are core/messages.py's table.
PEER_PROTOCOL = 6
