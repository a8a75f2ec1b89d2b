"""Keyspace walks: SCAN, KEYS, RANDOMKEY, DBSIZE.

Each covers the connection's database (`c.db`, commands/databases.py). On a node's
main port they cover the whole cluster (every live key exactly once, each
partition read from one up replica); on its cluster port (connections with
`cluster_view`) only the partitions the node owns, as a Redis Cluster master answers
for its own slots, so cluster-aware clients that fan them out to every master get each
key once. See `cluster/keyscan.py` for the cursor.
"""

from __future__ import annotations

import re

from ..resp import encode as resp
from ..resp.bulks import array_reply
from .collection import deliver
from .common import answer
from .context import Context
from .table import ERR_NOT_INT, ERR_SYNTAX, command, parse_int

_CURSOR = re.compile(rb"[+-]?[0-9]+")
ULONG_MAX = 2**64 - 1
ERR_CURSOR = resp.error("ERR invalid cursor")


def parse_cursor(raw: bytes) -> int | None:
    """As Redis' strtoul-based parse: optional sign, digits, no spaces; "" is 0."""
    if raw == b"":
        return 0
    if not _CURSOR.fullmatch(raw):
        return None
    n = int(raw)
    if abs(n) > ULONG_MAX:
        return None
    return n % (ULONG_MAX + 1)


@command("scan", -2, ("readonly",), group="generic", since="2.8.0",
         summary="Iterates over the key names in the database (the whole cluster on the "
                 "main port, this node's own partitions on the cluster port).")
def cmd_scan(c: Context, args: list[bytes]) -> bytes | None:
    cursor = parse_cursor(args[1])
    if cursor is None:
        return ERR_CURSOR
    count = 10
    match: bytes | None = None
    type_name: bytes | None = None
    i = 2
    while i < len(args):
        opt = args[i].lower()
        more = len(args) - i >= 2
        if opt == b"count" and more:
            n = parse_int(args[i + 1])
            if n is None:
                return ERR_NOT_INT
            if n < 1:
                return ERR_SYNTAX
            count = n
        elif opt == b"match" and more:
            match = args[i + 1]
        elif opt == b"type" and more:
            type_name = args[i + 1]
        else:
            return ERR_SYNTAX
        i += 2
    # TYPE: keys of that type only (a type Redis does not know lists none, as in 7.0).
    want: bool | str = True if type_name is None else \
        type_name.lower().decode("utf-8", "replace")
    proto = c.proto

    def render(value: tuple) -> bytes:
        nxt, keys = value
        return b"*2\r\n" + resp.bulk(b"%d" % nxt) + resp.encode(list(keys), proto)

    c.keyscan.scan(cursor, count, match, want, c.cluster_view, answer(c.defer(), render), c.db)
    return None


@command("keys", 2, ("readonly",), group="generic",
         summary="Returns all key names that match a pattern (the whole cluster on the main "
                 "port, this node's own partitions on the cluster port).")
def cmd_keys(c: Context, args: list[bytes]) -> None:
    slot = c.defer()

    def found(result: tuple) -> None:
        e, keys = result
        # Encoded over loop turns when long (1,000,000 keys at once held a node 190 ms).
        deliver(c, slot, (e, None if e is not None else array_reply(list(keys))))

    c.keyscan.keys(args[1], c.cluster_view, found, c.db)


@command("randomkey", 1, ("readonly",), group="generic",
         summary="Returns a random key name (from the whole cluster on the main port, from "
                 "this node's own partitions on the cluster port).")
def cmd_randomkey(c: Context, args: list[bytes]) -> None:
    nil = c.nil
    c.keyscan.randomkey(c.cluster_view, answer(
        c.defer(), lambda key: nil if key is None else resp.bulk(key)), c.db)


@command("dbsize", 1, ("readonly", "fast"), group="server",
         summary="Returns the number of keys (of the whole cluster on the main port, of this "
                 "node's own partitions on the cluster port).")
def cmd_dbsize(c: Context, args: list[bytes]) -> None:
    c.keyscan.dbsize(c.cluster_view, answer(c.defer(), resp.integer), c.db)
