"""A large value's reply made whole over loop turns, for a slot that takes no reply
written over turns (a command handed over by another node, whose reply goes back in a
peer message; EXEC's; a script's).

GETDEL of a 100 MB string, handed to the key's first replica, joined its reply from the
pinned value in one piece: 57-65 ms of that node's CPU (bench/hostile.py --trace). The
reply is now joined JOIN_SLICE bytes a loop turn (core/filled.Joining), the value pinned
until it is made; GET's read whole and decoded likewise (two copies in one piece).
"""

from __future__ import annotations

from typing import Any, Final

from ..core.engine import Pinned
from ..core.filled import Joining
from ..resp import encode as resp
from ..server.streamed import InTurns
from .context import Context, Slot

JOIN_SLICE: Final = 16 << 20  # bytes of a reply joined a loop turn (about 10 ms of CPU)
ERR_STOPPED: Final = resp.error("ERR the node stopped while the reply was made")


def whole_in_turns(c: Context, slot: Slot, pinned: tuple[Any, Pinned], before: bytes,
                   after: bytes) -> None:
    """Fill `slot` with `before`, the pinned value and `after`, joined over loop turns;
    the pin is released once they are (or the store closed first: an error)."""
    view, pin = pinned
    job = Joining([before, view, after])

    def turn() -> bool:
        if not pin.alive():  # the store closed (the node stops)
            job.release()
            pin.release()
            slot.set(ERR_STOPPED)
            return True
        if not job.step(JOIN_SLICE):
            return False
        reply = job.result()
        pin.release()
        slot.set(reply)
        return True

    InTurns(c.node.coll.later, turn)()
