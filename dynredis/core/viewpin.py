"""A snapshot of one kind of a key's elements, kept by copy-on-write while a reply made
of them goes out over loop turns.

LRANGE 0 -1 of a million items looked every item's value up (a dict lookup each, most of
them cache misses) in the command's turn: 240 ms of a loaded node's CPU. The command
now copies only the positions (a C copy of the list's order) and pins the view: the
reply looks the values up a slice at a time as it is encoded (resp/bulks.py
SlicedReply), through the pin. Until the pin is released, every change to an element
of that kind first gives the pin the value it had (`changed`, from KeyState.set_value),
so a read through the pin is the value as of the command, whatever is written since.
When the key's views are emptied (DEL, a removal record, the state let go of), the pin
takes the whole map (`detach`): nothing changes it from then on, and the pin frees it
(graveyard.py) when released.

The key's state holds its pins weakly: a reply dropped without being released (its
connection gone) stops costing the writes of the key as soon as it is freed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class ViewPin:
    """One kind's element -> value map as it was when pinned."""

    __slots__ = ("kind", "view", "saved", "unpin", "bury", "detached", "__weakref__")

    def __init__(self, kind: bytes, view: dict[bytes, Any],
                 unpin: Callable[[ViewPin], None], bury: Callable[[Any], None]) -> None:
        self.kind = kind
        self.view = view
        self.saved: dict[bytes, Any] = {}  # element -> its value when pinned (None: absent)
        self.unpin: Callable[[ViewPin], None] | None = unpin
        self.bury = bury
        self.detached = False

    def changed(self, element: bytes, old: Any) -> None:
        """The element's value is about to change from `old` (None: it was absent)."""
        saved = self.saved
        if element not in saved:
            saved[element] = old

    def detach(self) -> None:
        """The key's state let go of the map (it is no longer changed): kept as is."""
        self.detached = True
        self.unpin = None

    def values(self, elements: list[bytes]) -> list[Any]:
        """The values the elements had when pinned (None where absent), in order."""
        got = list(map(self.view.get, elements))
        saved = self.saved
        if saved:
            get = saved.get
            for i, element in enumerate(elements):
                if element in saved:
                    got[i] = get(element)
        return got

    def release(self) -> None:
        """The reply is sent (or dropped): changes are no longer kept."""
        if self.unpin is not None:
            self.unpin(self)
            self.unpin = None
        if self.detached:
            self.detached = False
            self.bury(self.view)
        self.view = {}
        self.saved = {}
