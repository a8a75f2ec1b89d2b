"""A large value pinned in the store copied out of it over loop turns (COPY_SLICE bytes
a turn, core/filled.Joining): for a slot that takes no reply written over turns (a
command handed over by another node, whose reply goes back in a peer message; EXEC's; a
script's), and for RENAME's copy of a large string (heldmoves.py).

GETDEL of a 100 MB string, handed to the key's first replica, joined its reply from the
pinned value in one piece: 57-65 ms of that node's CPU (bench/hostile.py --trace); GET's
read whole and decoded likewise (two copies in one piece).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from ..core.engine import Pinned
from ..core.filled import COPY_SLICE, Joining
from ..resp import encode as resp
from ..server.streamed import InTurns
from .context import Context, Slot

ERR_STOPPED: Final = resp.error("ERR the node stopped while the reply was made")


def whole_in_turns(c: Context, slot: Slot, pinned: tuple[Any, Pinned], before: bytes,
                   after: bytes) -> None:
    """Fill `slot` with `before`, the pinned value and `after`, joined over loop turns
    (or an error if the store closed first)."""
    view, pin = pinned

    def joined(reply: bytes | None) -> None:
        slot.set(ERR_STOPPED if reply is None else reply)

    join_in_turns(c.node.coll.later, pin, [before, view, after], joined)


def join_in_turns(later: Callable[[Any], None], pin: Pinned, parts: list[Any],
                  then: Callable[[bytes | None], None]) -> None:
    """`then(the parts joined)`, COPY_SLICE bytes copied a loop turn, `pin` (holding what
    they view) released once they are; `then(None)` if the store closed first (the node
    stops)."""
    job = Joining(parts)

    def turn() -> bool:
        if not pin.alive():
            job.release()
            pin.release()
            then(None)
            return True
        if not job.step(COPY_SLICE):
            return False
        joined = job.result()
        pin.release()
        then(joined)
        return True

    InTurns(later, turn)()
