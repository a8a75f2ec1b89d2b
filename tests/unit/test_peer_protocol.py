"""The peer protocol's version follows its message table: a change of a kind or its
fields (core/messages.py) must bump PEER_PROTOCOL (server/wire.py), or a node of the
build before links with one of the build after and each fails the other's messages on
unpacking instead of refusing the link (a collection write gained its `part` with the
version left at 6)."""

from __future__ import annotations

import hashlib

from dynredis.core.messages import KINDS
from dynredis.server.wire import PEER_PROTOCOL

# The digest of each version's table (`table_digest`): a new version pins its own here.
PINNED = {
    6: "b25be18a4f87c4a319f5fb608f1d9ae34ebacdcbf1d969908bfc46c7cba760da",
    7: "10a19e408f1e48cf7d3641f8d43230b5ecae8ef59d28a87e086453090af8f2f4",
    8: "630ffb3f8f8e6087da12abb2c52cf7fc2c1bb04105b77c920c6db43dbb52b023",
    9: "909dd9e366ec4866414d9af5a2d44b4e83b9ea3becbff1ca7c02ad1c9e132f82",  # afp: a handed-over plan moves on
    10: "b99714c72c1dcec0fe588d26fbdef4cf1d02444e1c453006ac1debbb8fe59a54",  # ps: a turn's puts, one message
    11: "242db920fe04e2b155bcfb99593d0cf34d25a44c8f06e202221f9f4e16e19977",  # cs have: no large header sent back
}


def table_digest() -> str:
    rows = sorted((k.kind, k.fields, k.batch) for k in KINDS.values())
    return hashlib.sha256(repr(rows).encode()).hexdigest()


def test_the_message_table_is_the_one_its_protocol_version_pinned() -> None:
    assert PINNED.get(PEER_PROTOCOL) == table_digest(), (
        "core/messages.py's kinds or fields changed: bump PEER_PROTOCOL in server/wire.py "
        f"and pin {table_digest()} for it here")
