"""Peer message framing: a batch of messages is one RESP bulk string holding msgpack.

Peers share the client port and RESP framing; once a connection has passed the
DYN.PEER handshake (peerauth.py) it carries only these frames, which hiredis splits and
msgpack decodes. Everything a node has for one peer in one loop turn travels as one frame: one
encode, one write, one decode, however many messages it holds.
"""

from __future__ import annotations

import msgpack
import msgspec

# msgspec encodes (the same bytes as msgpack, 3x faster per message: see core/obj.py);
# msgpack decodes, into tuples.
_pack = msgspec.msgpack.Encoder().encode


def batch(msgs: list[tuple]) -> bytes:
    """One frame carrying a list of messages."""
    body = _pack(msgs)
    return b"$%d\r\n%b\r\n" % (len(body), body)


def unframe(body: bytes) -> tuple:
    return msgpack.unpackb(body, use_list=False)


# The version of the peer messages (their kinds and fields). A node links only with
# peers of its own version: one that sent messages the other cannot read would leave its
# requests to time out silently. 1: single acknowledgements and answers (no version
# word in the hello); 2: batched acknowledgements and answers ("pas", "gas"); 3: the
# secret is proven by challenge-response (DYN.PEER HELLO / PROOF), never sent; 4: a
# replica's refusal ("nak"), keyspace queries with their arguments as one field; 5: the
# scripts and function libraries every node holds ("rgp", "rga", "rgd", "rgt"); 6:
# pub/sub across the cluster ("pp", "ppa", "pq", "pqa", "pne"). The kinds and their
# fields are core/messages.py's table.
PEER_PROTOCOL = 6
