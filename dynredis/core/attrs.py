"""An optional attribute, read the cheap way in compiled code.

mypyc compiles `getattr(obj, name, default)` to a plain attribute read that, where the
attribute is missing, raises an AttributeError (its message formatted) and clears it:
0.39 µs a call against 0.05 for `hasattr` first (a compiled probe, 10^6 calls). The
request path asks for attributes most objects lack (a client's `gate_owner`, which only
a script's calls carry; a command op's `views`), so it asks this instead."""

from __future__ import annotations

from typing import Any


def attr_or(obj: Any, name: str, default: Any) -> Any:
    """`getattr(obj, name, default)`, with no exception raised where it is missing."""
    return getattr(obj, name) if hasattr(obj, name) else default
