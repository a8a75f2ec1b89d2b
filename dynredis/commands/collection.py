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

from collections.abc import Callable
from typing import Any

from ..core.collview import KeyView
from ..resp import encode as resp
from .table import ERR_WRONGTYPE, command

Op = Callable[[KeyView], bytes]
Built = tuple[bytes, Op]
Builder = Callable[[list[bytes], int], "Built | bytes"]

BUILDERS: dict[str, Builder] = {}


def collection_command(name: str, arity: int, flags: tuple[str, ...], first_key: int,
                       last_key: int, step: int, group: str, summary: str,
                       since: str = "1.0.0") -> Callable[[Builder], Builder]:
    """Register a builder as the command `name` (see module docstring)."""

    def register(build: Builder) -> Builder:
        def handler(c: Any, args: list[bytes]) -> bytes | None:
            built = build(args, c.proto)
            if isinstance(built, bytes):
                return built
            key, op = built
            slot = c.defer()

            def done(result: tuple[str | None, Any]) -> None:
                slot.set(resp.error(result[0]) if result[0] is not None else result[1])

            c.node.coll.run(key, op, done, (args, c.proto), c.r, c.w)
            return None

        command(name, arity, flags, first_key, last_key, step, group, summary, since)(handler)
        BUILDERS[name] = build
        return build

    return register


def run_forwarded(node: Any, payload: Any, answer: Callable[[tuple[str | None, Any]], None]
                  ) -> None:
    """Run a collection command another node forwarded to this replica."""
    args, proto = payload
    args = list(args)
    build = BUILDERS.get(args[0].decode("utf-8", "replace").lower())
    if build is None:
        answer(("ERR unknown forwarded command", None))
        return
    built = build(args, proto)
    if isinstance(built, bytes):
        answer((None, built))
        return
    key, op = built
    node.coll.run(key, op, answer, payload)


def wrong_type(view: KeyView, type_name: str) -> bool:
    """True if the key exists and holds another type than `type_name`."""
    t = view.type()
    return t is not None and t != type_name


WRONGTYPE = ERR_WRONGTYPE
