"""Hash commands: a hash is an add-wins map of fields (core/elements.py).

Each field is its own record: HSET of one field writes, sends and hashes that field
only. Concurrent writes of one field through different nodes: the last writer wins;
a write concurrent with an HDEL of the field wins over it; concurrent HINCRBYs all
count (a counter field); HINCRBYFLOAT is a read-modify-write of the field's value (last
writer wins).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from fractions import Fraction
from functools import partial

from ..core.collview import KeyView
from ..core.records import HASH
from ..resp import bulks
from ..resp import encode as resp
from . import longdouble
from .collection import Built, collection_command, scan_order, typed_op
from .scanning import scan_elements
from .sets import ERR_RANDOM_RANGE, RANDOM_REPEATS_MAX, random_pick
from .table import ERR_NOT_INT, ERR_SYNTAX, err_arity, parse_int

ERR_HASH_NOT_INT = resp.error("ERR hash value is not an integer")
ERR_HASH_NOT_FLOAT = resp.error("ERR hash value is not a float")
ERR_OVERFLOW = resp.error("ERR increment or decrement would overflow")
ERR_NOT_FLOAT = resp.error("ERR value is not a valid float")
ERR_NAN_OR_INF = resp.error("ERR increment would produce NaN or Infinity")
ERR_NAN_OR_INF_ARG = resp.error("ERR value is NaN or Infinity")

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def field_bytes(value: object) -> bytes:
    """A field's value as a reply carries it (a counter field as its decimal)."""
    if type(value) is int:
        return b"%d" % value  # type: ignore[str-bytes-safe]
    return value  # type: ignore[return-value]


# --- writes ----------------------------------------------------------------------------


def _hset(args: list[bytes], count_new: bool) -> Built:
    key = args[1]
    pairs = list(zip(args[2::2], args[3::2], strict=True))

    def body(v: KeyView) -> bytes:
        get = v.get
        added = len({f for f, _ in pairs if get(HASH, f) is None}) if count_new else 0
        v.put_many(HASH, pairs)  # fields without a record in one batch
        return resp.integer(added) if count_new else resp.OK

    return key, typed_op("hash", body)


@collection_command("hset", -4, ("write", "denyoom", "fast"), 1, 1, 1, "hash",
                    "Creates or modifies the value of a field in a hash.", "2.0.0")
def build_hset(args: list[bytes], proto: int) -> Built | bytes:
    if len(args) % 2:
        return err_arity("hset")
    return _hset(args, True)


@collection_command("hmset", -4, ("write", "denyoom", "fast"), 1, 1, 1, "hash",
                    "Sets the values of multiple fields.", "2.0.0")
def build_hmset(args: list[bytes], proto: int) -> Built | bytes:
    if len(args) % 2:
        return err_arity("hmset")
    return _hset(args, False)


@collection_command("hsetnx", 4, ("write", "denyoom", "fast"), 1, 1, 1, "hash",
                    "Sets the value of a field in a hash only when the field doesn't exist.",
                    "2.0.0")
def build_hsetnx(args: list[bytes], proto: int) -> Built | bytes:
    key, f, val = args[1], args[2], args[3]

    def body(v: KeyView) -> bytes:
        if v.get(HASH, f) is not None:
            return resp.ZERO
        v.put(HASH, f, val)
        return resp.ONE

    return key, typed_op("hash", body)


@collection_command("hdel", -3, ("write", "fast"), 1, 1, 1, "hash",
                    "Deletes one or more fields and their values from a hash.", "2.0.0")
def build_hdel(args: list[bytes], proto: int) -> Built | bytes:
    key, fields = args[1], args[2:]

    def body(v: KeyView) -> bytes:
        removed = 0
        for f in fields:
            if v.get(HASH, f) is not None:
                removed += 1
                v.put(HASH, f, None)
        return resp.integer(removed)

    return key, typed_op("hash", body)


@collection_command("hincrby", 4, ("write", "denyoom", "fast"), 1, 1, 1, "hash",
                    "Increments the integer value of a field in a hash by a number.",
                    "2.0.0")
def build_hincrby(args: list[bytes], proto: int) -> Built | bytes:
    key, f = args[1], args[2]
    delta = parse_int(args[3])
    if delta is None:
        return ERR_NOT_INT

    # (a module function bound with partial, not a closure: compiled, this one and its
    # environment formed a reference cycle per command)
    return key, typed_op("hash", partial(_hincrby, f, delta))


def _hincrby(f: bytes, delta: int, v: KeyView) -> bytes:
    current = v.get(HASH, f)
    start = 0
    if type(current) is bytes:
        parsed = parse_int(current)
        if parsed is None:
            return ERR_HASH_NOT_INT
        start = parsed
    elif type(current) is int:
        start = current
    if not INT64_MIN <= start + delta <= INT64_MAX:
        return ERR_OVERFLOW
    # A field holding a string (or nothing) becomes a counter starting there.
    return resp.integer(int(v.increment(HASH, f, delta, start)))


@collection_command("hincrbyfloat", 4, ("write", "denyoom", "fast"), 1, 1, 1, "hash",
                    "Increments the floating point value of a field by a number.", "2.6.0")
def build_hincrbyfloat(args: list[bytes], proto: int) -> Built | bytes:
    key, f = args[1], args[2]
    delta = longdouble.parse(args[3])
    if delta is None:
        return ERR_NOT_FLOAT
    if isinstance(delta, float):
        return ERR_NAN_OR_INF_ARG
    # (a module function bound with partial, not a closure: compiled, a closure naming a
    # function its builder names too (`isinstance`) is kept in the builder's environment,
    # which the closure holds: a reference cycle per command)
    return key, typed_op("hash", partial(_hincrbyfloat, f, delta))


def _hincrbyfloat(f: bytes, delta: Fraction, v: KeyView) -> bytes:
    current = v.get(HASH, f)
    base: Fraction | float = Fraction(0)
    if current is not None:
        parsed = longdouble.parse(field_bytes(current))
        if parsed is None:
            return ERR_HASH_NOT_FLOAT
        base = parsed
    if isinstance(base, float):
        return ERR_NAN_OR_INF
    total = longdouble.ld_round(base + delta)
    if isinstance(total, float):
        return ERR_NAN_OR_INF
    value = longdouble.format_ld(total)
    v.put(HASH, f, value)
    return resp.bulk(value)


# --- reads -----------------------------------------------------------------------------


def _value_reply(value: object, proto: int) -> bytes:
    """A field's value as HGET and HMGET answer it: nil for no such field."""
    return resp.nil(proto) if value is None else resp.bulk(field_bytes(value))


def _field_read(args: list[bytes], answer: Callable[[object], bytes]) -> Built:
    """A read of the one field `args[2]` (HGET, HEXISTS, HSTRLEN): `answer(its value, or
    None)`."""
    f = args[2]

    def body(v: KeyView) -> bytes:
        return answer(v.get(HASH, f))

    return args[1], typed_op("hash", body)


def _items(v: KeyView) -> list[tuple[bytes, bytes]]:
    """The hash's (field, value) pairs, values as replies carry them."""
    return [(f, field_bytes(val)) for f, val in v.items(HASH)]


@collection_command("hget", 3, ("readonly", "fast"), 1, 1, 1, "hash",
                    "Returns the value of a field in a hash.", "2.0.0")
def build_hget(args: list[bytes], proto: int) -> Built | bytes:
    return _field_read(args, lambda value: _value_reply(value, proto))


@collection_command("hmget", -3, ("readonly", "fast"), 1, 1, 1, "hash",
                    "Returns the values of all fields in a hash.", "2.0.0")
def build_hmget(args: list[bytes], proto: int) -> Built | bytes:
    fields = args[2:]

    def body(v: KeyView) -> bytes:
        return resp.array([_value_reply(v.get(HASH, f), proto) for f in fields])

    return args[1], typed_op("hash", body)


@collection_command("hexists", 3, ("readonly", "fast"), 1, 1, 1, "hash",
                    "Determines whether a field exists in a hash.", "2.0.0")
def build_hexists(args: list[bytes], proto: int) -> Built | bytes:
    return _field_read(args, lambda value: resp.ONE if value is not None else resp.ZERO)


@collection_command("hstrlen", 3, ("readonly", "fast"), 1, 1, 1, "hash",
                    "Returns the length of the value of a field.", "3.2.0")
def build_hstrlen(args: list[bytes], proto: int) -> Built | bytes:
    return _field_read(
        args, lambda value: resp.integer(0 if value is None else len(field_bytes(value))))


@collection_command("hlen", 2, ("readonly", "fast"), 1, 1, 1, "hash",
                    "Returns the number of fields in a hash.", "2.0.0")
def build_hlen(args: list[bytes], proto: int) -> Built | bytes:
    def body(v: KeyView) -> bytes:
        return resp.integer(v.count(HASH))

    return args[1], typed_op("hash", body)


def _whole(args: list[bytes], proto: int, keys: bool, values: bool) -> Built:
    def body(v: KeyView) -> bytes | bulks.SlicedReply:
        if keys and not values:
            return bulks.array_reply(list(v.members(HASH)), owned=True)
        fields, vals = v.columns(HASH)  # (counters made decimals a slice at a time)
        if keys:
            return bulks.pairs_reply(fields, vals, proto, as_map=True, counters=True,
                                     owned=True)
        return bulks.array_reply(vals, counters=True, owned=True)

    return args[1], typed_op("hash", body)


@collection_command("hgetall", 2, ("readonly",), 1, 1, 1, "hash",
                    "Returns all fields and values in a hash.", "2.0.0")
def build_hgetall(args: list[bytes], proto: int) -> Built | bytes:
    return _whole(args, proto, True, True)


@collection_command("hkeys", 2, ("readonly",), 1, 1, 1, "hash",
                    "Returns all fields in a hash.", "2.0.0")
def build_hkeys(args: list[bytes], proto: int) -> Built | bytes:
    return _whole(args, proto, True, False)


@collection_command("hvals", 2, ("readonly",), 1, 1, 1, "hash",
                    "Returns all values in a hash.", "2.0.0")
def build_hvals(args: list[bytes], proto: int) -> Built | bytes:
    return _whole(args, proto, False, True)


# As for SRANDMEMBER (sets.py): a negative count makes a reply of that many fields, and
# a node refuses one beyond RANDOM_REPEATS_MAX rather than build it in its memory.
ERR_HRANDFIELD_REPEATS = resp.error(
    f"ERR value is out of range, a negative count asks for at most {RANDOM_REPEATS_MAX} "
    "fields")


@collection_command("hrandfield", -2, ("readonly",), 1, 1, 1, "hash",
                    "Returns one or more random fields from a hash.", "6.2.0")
def build_hrandfield(args: list[bytes], proto: int) -> Built | bytes:
    key = args[1]
    if len(args) > 4:
        return ERR_SYNTAX
    count: int | None = None
    with_values = False
    if len(args) >= 3:
        count = parse_int(args[2])
        if count is None:
            return ERR_NOT_INT
        if len(args) == 4:
            if args[3].upper() != b"WITHVALUES":
                return ERR_SYNTAX
            with_values = True
            if count < -(2**62) or count > 2**62:
                return resp.error("ERR value is out of range")
        if count == -(2**63):
            return ERR_RANDOM_RANGE
        if count < -RANDOM_REPEATS_MAX:
            return ERR_HRANDFIELD_REPEATS

    def body(v: KeyView) -> bytes | bulks.SlicedReply:
        fields, values = v.columns(HASH) if with_values else (list(v.members(HASH)), [])
        if count is None:
            return resp.bulk(random.choice(fields)) if fields else resp.nil(proto)
        picked = random_pick(len(fields), count)
        if with_values:
            return bulks.pairs_reply(fields, values, proto, as_map=False, index=picked,
                                     counters=True)
        return bulks.array_reply(fields, index=picked)

    return key, typed_op("hash", body)


@collection_command("hscan", -3, ("readonly",), 1, 1, 1, "hash",
                    "Iterates over fields and values of a hash.", "2.8.0")
def build_hscan(args: list[bytes], proto: int) -> Built | bytes:
    key = args[1]
    parsed = scan_elements.parse(args)
    if isinstance(parsed, bytes):
        return parsed

    def body(v: KeyView) -> bytes:
        page = scan_elements.page(parsed, v, HASH)
        if page is None:
            return scan_elements.reply(parsed, 0, _items(v), True)
        cursor, fields = page
        return scan_elements.reply(parsed, cursor, [
            (f, field_bytes(val)) for f, val in zip(fields, v.values_at(HASH, fields),
                                                     strict=True)], True)

    return key, scan_order(typed_op("hash", body), HASH)
