"""Peer message framing: each message is one RESP bulk string holding msgpack.

Peers share the client port and RESP framing; after `DYN.PEER <secret> <name>`
a connection carries only these frames, which hiredis splits and msgpack decodes.
"""

from __future__ import annotations

import msgpack

_pack = msgpack.Packer(use_bin_type=True).pack


def frame(msg: tuple) -> bytes:
    body = _pack(msg)
    return b"$%d\r\n%b\r\n" % (len(body), body)


def frames(msgs: list[tuple]) -> bytes:
    return b"".join([frame(m) for m in msgs])


def unframe(body: bytes) -> tuple:
    return msgpack.unpackb(body, use_list=False)


def peer_hello(secret: str, name: str) -> bytes:
    words = [b"DYN.PEER", secret.encode(), name.encode()]
    return b"*3\r\n" + b"".join(b"$%d\r\n%b\r\n" % (len(w), w) for w in words)
