"""Redis Cluster hash slots: CRC16-XMODEM of the key (or its {hash tag}) mod 16384.

Using Redis Cluster's slot function means cluster-aware clients compute the same slot
we do and can route each key straight to one of its replicas.
"""

from binascii import crc_hqx
from collections.abc import Callable
from typing import Final

SLOTS: Final = 16384
_crc_hqx: Final = crc_hqx  # (Final: compiled code calls it from a C global)

# The same slot in C where it is built (csrc/keyslot.c): about 100 instructions a key
# against 700 here (a test for '{', crc_hqx's call and buffer); key_slot_in_python is
# the fallback and the reference the tests hold it to.
_slot_c: Callable[[bytes], int] | None
_partition_c: Callable[[bytes, int], int] | None
try:
    from .._keyslot import partition as _partition_c
    from .._keyslot import slot as _slot_c
except ImportError:  # not built, or a pure run
    _slot_c = _partition_c = None
_native_slot: Final[Callable[[bytes], int] | None] = _slot_c
_native_partition: Final[Callable[[bytes, int], int] | None] = _partition_c


def hash_tag(key: bytes) -> bytes:
    """The part of `key` that is hashed: the first non-empty {...} section, else the key."""
    start = key.find(b"{")
    if start != -1:
        end = key.find(b"}", start + 1)
        if end > start + 1:
            return key[start + 1 : end]
    return key


def key_slot(key: bytes) -> int:
    """The hash slot of `key`, exactly as Redis Cluster computes it."""
    native = _native_slot
    if native is not None:
        return native(key)
    return key_slot_in_python(key)


def slot_partition(key: bytes, shift: int) -> int:
    """`key_slot(key) >> shift` (core/ring.py's partition_of): in C, a partition under
    256 is one of Python's shared small ints, where a slot was an int made per key."""
    native = _native_partition
    if native is not None and type(key) is bytes:
        return native(key, shift)
    return key_slot(key) >> shift


def key_slot_in_python(key: bytes) -> int:
    """`key_slot` in Python."""
    # The common case, on every request's path. An int operand ('{') makes `in` a
    # memchr; a bytes operand first fails an int conversion (raising and clearing a
    # TypeError), which cost ten times as much.
    if 0x7B not in key:
        return _crc_hqx(key, 0) & (SLOTS - 1)
    return _crc_hqx(hash_tag(key), 0) & (SLOTS - 1)
