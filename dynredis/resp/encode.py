"""RESP2/RESP3 reply encoding.

Hot-path replies (bulk strings, integers, OK, nulls) have dedicated functions;
`encode` turns any plain Python value into a reply for the less frequent commands
(INFO, COMMAND, HELLO, CLUSTER ...). Requests are parsed by request.py.
"""

from __future__ import annotations

from typing import Any

# Subclasses of str/list stay ordinary Python classes when compiled (mypyc cannot
# make them native).
from mypy_extensions import mypyc_attr

OK = b"+OK\r\n"
PONG = b"+PONG\r\n"
QUEUED = b"+QUEUED\r\n"
NIL2 = b"$-1\r\n"
NIL3 = b"_\r\n"
NIL_ARRAY2 = b"*-1\r\n"
EMPTY_ARRAY = b"*0\r\n"
ZERO = b":0\r\n"
ONE = b":1\r\n"


def bulk(data: bytes) -> bytes:
    return b"$%d\r\n%b\r\n" % (len(data), data)


def integer(n: int) -> bytes:
    return b":%d\r\n" % n


def simple(text: str) -> bytes:
    return b"+" + text.encode() + b"\r\n"


def error(text: str) -> bytes:
    """An error reply; `text` starts with its code (ERR, WRONGTYPE, NOAUTH ...)."""
    return b"-" + text.replace("\r", " ").replace("\n", " ").encode() + b"\r\n"


def nil(proto: int) -> bytes:
    return NIL3 if proto >= 3 else NIL2


def array(items: list[bytes]) -> bytes:
    """An array of already-encoded replies."""
    return b"*%d\r\n" % len(items) + b"".join(items)


@mypyc_attr(native_class=False)
class Error(str):
    """A value that `encode` renders as an error reply."""


@mypyc_attr(native_class=False)
class Verbatim(str):
    """Text that RESP3 renders as a verbatim string (INFO, CLIENT INFO ...)."""


@mypyc_attr(native_class=False)
class Simple(str):
    """Text rendered as a simple (status) string."""


@mypyc_attr(native_class=False)
class SetReply(list):
    """An ordered RESP3 set (`~`; an array in RESP2), as COMMAND INFO's flag lists."""


def encode(value: Any, proto: int = 2) -> bytes:
    """Encode a plain Python value as a reply for protocol `proto` (2 or 3)."""
    if value is None:
        return nil(proto)
    if isinstance(value, bool):
        if proto >= 3:
            return b"#t\r\n" if value else b"#f\r\n"
        return ONE if value else ZERO
    if isinstance(value, int):
        return integer(value)
    if isinstance(value, bytes):
        return bulk(value)
    if isinstance(value, Error):
        return error(value)
    if isinstance(value, Simple):
        return simple(value)
    if isinstance(value, Verbatim):
        data = value.encode()
        if proto >= 3:
            return b"=%d\r\ntxt:%b\r\n" % (len(data) + 4, data)
        return bulk(data)
    if isinstance(value, str):
        return bulk(value.encode())
    if isinstance(value, float):
        text = repr(value).encode() if value == value else b"nan"
        if value in (float("inf"), float("-inf")):
            text = b"inf" if value > 0 else b"-inf"
        return b",%b\r\n" % text if proto >= 3 else bulk(text)
    if isinstance(value, dict):
        if proto >= 3:
            parts = [b"%%%d\r\n" % len(value)]
        else:
            parts = [b"*%d\r\n" % (2 * len(value))]
        for k, v in value.items():
            parts.append(encode(k, proto))
            parts.append(encode(v, proto))
        return b"".join(parts)
    if isinstance(value, (set, frozenset, SetReply)):
        head = b"~%d\r\n" if proto >= 3 else b"*%d\r\n"
        return head % len(value) + b"".join(encode(v, proto) for v in value)
    if isinstance(value, (list, tuple)):
        return b"*%d\r\n" % len(value) + b"".join(encode(v, proto) for v in value)
    raise TypeError(f"cannot encode {type(value).__name__} as RESP")
