"""Types of the C helper dynredis/csrc/bitop.c (see commands/bitops.py's bitop)."""

from collections.abc import Sequence

def bitop(op: int, sources: Sequence[bytes | bytearray | memoryview]) -> bytes: ...
