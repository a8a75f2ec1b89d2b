"""Bit arithmetic (commands/bitops.py) and LCS (commands/lcs.py) against plain models:
strings as lists of bits, integers without a width, the textbook LCS table.

Exact replies and error texts against a real redis-server are the differential
test's job (compat/test_differential.py, families bitmaps and string-extras)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dynredis.commands import bitops, storedbits
from dynredis.commands.bitops import BitError
from dynredis.commands.lcs import Lcs
from dynredis.core.pieces import whole

data = st.binary(max_size=12)
small = st.integers(-120, 120)


def bits_of(b: bytes) -> list[int]:
    return [(byte >> (7 - i)) & 1 for byte in b for i in range(8)]


def from_bits(bits: list[int]) -> int:
    n = 0
    for x in bits:
        n = n * 2 + x
    return n


def normalize(start: int, end: int, total: int) -> tuple[int, int]:
    """Redis' range rule: negatives count from the end, then clamp into the string."""
    if start < 0:
        start += total
    if end < 0:
        end += total
    return max(start, 0), min(max(end, 0), total - 1)


def b(n: int) -> bytes:
    return b"%d" % n


# --- SETBIT / GETBIT --------------------------------------------------------------------


@given(data, st.integers(0, 130), st.integers(0, 1))
@settings(deadline=None)
def test_setbit_sets_one_bit_and_pads_with_zeros(d: bytes, offset: int, on: int) -> None:
    old, new = bitops.setbit(d, offset, on)
    model = bits_of(d)
    assert old == (model[offset] if offset < len(model) else 0)
    result = new if new is not None else d
    want = model + [0] * max(0, (offset // 8 + 1) * 8 - len(model))
    want[offset] = on
    assert bits_of(result) == want
    assert (new is None) == (result == d)  # a write only when something changes
    assert bitops.getbit(result, offset) == on


def test_setbit_on_a_missing_key_creates_it_even_for_a_zero() -> None:
    assert bitops.setbit(None, 9, 0) == (0, b"\x00\x00")


@pytest.mark.parametrize("raw", [b"-1", b"x", b"", b"4294967296", b"01", b"#1"])
def test_bad_offsets(raw: bytes) -> None:
    with pytest.raises(BitError, match="bit offset is not an integer or out of range"):
        bitops.bit_offset(raw)
    assert bitops.bit_offset(b"4294967295") == 2**32 - 1  # the last bit of 512 MB


# --- BITCOUNT / BITPOS ------------------------------------------------------------------


@given(data, small, small, st.sampled_from([None, b"BYTE", b"bit", b"BIT"]))
@settings(deadline=None)
def test_bitcount_counts_the_ones_in_the_range(d: bytes, start: int, end: int,
                                              unit: bytes | None) -> None:
    args = [b(start), b(end)] + ([unit] if unit else [])
    got = bitops.bitcount(d, args)
    isbit = unit is not None and unit.lower() == b"bit"
    total = len(d) * 8 if isbit else len(d)
    if start < 0 and end < 0 and start > end:
        assert got == 0
        return
    s, e = normalize(start, end, total)
    model = bits_of(d)
    chosen = model[s:e + 1] if isbit else model[s * 8:(e + 1) * 8]
    assert got == (sum(chosen) if s <= e else 0)
    assert bitops.bitcount(d, []) == sum(model)


@given(data, st.integers(0, 1), st.one_of(st.none(), small), st.one_of(st.none(), small),
       st.sampled_from([None, b"byte", b"BIT"]))
@settings(deadline=None)
def test_bitpos_finds_the_first_matching_bit(d: bytes, bit: int, start: int | None,
                                             end: int | None, unit: bytes | None) -> None:
    if start is None:
        end, unit = None, None
    if end is None:
        unit = None
    args = [b(x) for x in (start, end) if x is not None] + ([unit] if unit else [])
    got = bitops.bitpos(d, bit, args)
    model = bits_of(d)
    isbit = unit is not None and unit.lower() == b"bit"
    total = len(d) * 8 if isbit else len(d)
    s, e = normalize(start if start is not None else 0,
                     end if end is not None else total - 1, total)
    if s > e:
        assert got == -1
        return
    lo, hi = (s, e + 1) if isbit else (s * 8, (e + 1) * 8)
    found = next((i for i in range(lo, hi) if model[i] == bit), None)
    if found is not None:
        assert got == found
    elif bit == 0 and end is None:
        assert got == len(model)  # no end given: the zeros past the string count
    else:
        assert got == -1


def test_bitpos_bit_argument() -> None:
    with pytest.raises(BitError, match="The bit argument must be 1 or 0."):
        bitops.bitpos_bit(b"2")
    with pytest.raises(BitError, match="value is not an integer"):
        bitops.bitpos_bit(b"x")


# --- BITOP -------------------------------------------------------------------------------


def bitop_model(op: bytes, srcs: list[bytes]) -> bytes:
    """BITOP byte by byte over the sources zero-padded to the longest."""
    size = max((len(s) for s in srcs), default=0)
    padded = [s.ljust(size, b"\0") for s in srcs]
    if op == b"not":
        return bytes(255 - x for x in padded[0])
    want = bytearray(padded[0])
    for s in padded[1:]:
        for i, x in enumerate(s):
            want[i] = want[i] & x if op == b"and" else want[i] | x if op == b"or" else want[i] ^ x
    return bytes(want)


def _native_bitop():  # type: ignore[no-untyped-def]
    try:
        from dynredis import _bitop
    except ImportError:
        return None
    return _bitop.bitop


def _as_given(srcs: list[bytes], views: list[bool]) -> list[bytes | memoryview]:
    """The sources, some as memoryviews at an odd offset of a larger buffer (as values
    pinned in the store are given)."""
    return [memoryview(b"\x5a" + s + b"\xa5")[1:-1] if view else s
            for s, view in zip(srcs, views, strict=False)]


sources = st.lists(st.binary(max_size=40), min_size=1, max_size=4)


@given(st.sampled_from([b"and", b"or", b"xor"]), sources, st.lists(st.booleans(), min_size=4))
@settings(deadline=None)
def test_bitop_works_byte_by_byte_over_zero_padded_sources(op: bytes, srcs: list[bytes],
                                                           views: list[bool]) -> None:
    """In C (when built) and in Python alike, over bytes or views of pinned values."""
    want = bitop_model(op, srcs)
    given_srcs = _as_given(srcs, views)
    assert bitops.bitop(op, given_srcs) == want
    assert bitops.bitop_pure(op, given_srcs) == want
    native = _native_bitop()
    if native is not None:
        assert native(bitops.BITOP_OPS.index(op), given_srcs) == want


@given(st.binary(max_size=40), st.booleans())
@settings(deadline=None)
def test_bitop_not_inverts_every_byte(d: bytes, view: bool) -> None:
    given_srcs = _as_given([d], [view])
    want = bytes(255 - x for x in d)
    assert bitops.bitop(b"not", given_srcs) == want
    assert bitops.bitop_pure(b"not", given_srcs) == want


@given(st.sampled_from([b"and", b"or", b"xor", b"not"]), sources,
       st.lists(st.booleans(), min_size=4), st.lists(st.integers(0, 20), min_size=1))
@settings(deadline=None)
def test_bitop_made_a_slice_a_step_is_bitop_at_once(op: bytes, srcs: list[bytes],
                                                    views: list[bool], steps: list[int]) -> None:
    """Combining, whatever the slices its steps write (in C when built, else at once),
    hands out what bitop gives; each step says whether it was the last."""
    srcs = srcs[:1] if op == b"not" else srcs
    job = bitops.Combining(op, _as_given(srcs, views))
    size = max(len(s) for s in srcs)
    written = 0
    for n in steps * (size + 1):
        done = job.step(n)
        written += max(n, 1)
        if done:
            break
    assert done and (written >= size or bitops._NativeJob is None)
    assert job.result() == bitop_model(op, srcs)


def test_the_c_job_hands_out_its_result_once_and_only_when_written() -> None:
    from dynredis import native

    if bitops._NativeJob is None:
        pytest.skip("the C helper is not built (pure Python run)")
    assert native.why_pure() is None
    job = bitops._NativeJob(1, [b"\x01" * 20, memoryview(b"\x02" * 9)])
    with pytest.raises(RuntimeError):
        job.result()
    assert job.step(16) is False
    assert job.step(16) is True
    assert job.result() == b"\x03" * 9 + b"\x01" * 11
    with pytest.raises(RuntimeError):
        job.result()
    with pytest.raises(ValueError):
        bitops._NativeJob(3, [b"a", b"b"])


def test_native_bitop_refuses_what_is_not_a_bitop() -> None:
    native = _native_bitop()
    if native is None:
        pytest.skip("the C helper is not built (pure Python run)")
    with pytest.raises(ValueError):
        native(3, [b"a", b"b"])  # NOT of two
    with pytest.raises(ValueError):
        native(4, [b"a"])
    with pytest.raises(ValueError):
        native(0, [])
    with pytest.raises(TypeError):
        native(0, [b"a", "not a buffer"])
    assert native(0, [b"", b""]) == b""


def test_bitop_arguments() -> None:
    assert bitops.bitop_name(b"XoR", 3) == b"xor"
    with pytest.raises(BitError, match="BITOP NOT must be called with a single source key."):
        bitops.bitop_name(b"not", 2)
    with pytest.raises(BitError, match="syntax error"):
        bitops.bitop_name(b"nand", 2)


# --- BITFIELD ----------------------------------------------------------------------------

field_type = st.one_of(st.tuples(st.just(True), st.integers(1, 64)),
                       st.tuples(st.just(False), st.integers(1, 63)))
i64 = st.integers(-(2**63), 2**63 - 1) | st.integers(-300, 300)


def model_field(bits: list[int], offset: int, width: int, signed: bool) -> int:
    chunk = (bits + [0] * (offset + width))[offset:offset + width]
    v = from_bits(chunk)
    return v - (1 << width) if signed and chunk[0] else v


def model_store(value: int, width: int, signed: bool, overflow: int,
                is_set: bool) -> int | None:
    """The number a SET/INCRBY result becomes: wrapped, saturated or refused (None)."""
    if signed:
        lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    else:
        lo, hi = 0, (1 << width) - 1
        if is_set:
            value &= (1 << 64) - 1  # Redis reads the SET value as a 64-bit unsigned
    if signed and is_set and overflow != bitops.WRAP and value < lo \
            and hi - value > (1 << 63) - 1:
        # Redis' quirk (checkSignedBitfieldOverflow computes top - value in 64 bits, which
        # wraps for values this far below the field): redis-server 7.0 saturates
        # `BITFIELD k OVERFLOW SAT SET i14 0 -9223372036854767617` to 8191, and
        # OVERFLOW FAIL refuses it as too large.
        return hi if overflow == bitops.SAT else None
    if lo <= value <= hi:
        return value
    if overflow == bitops.FAIL:
        return None
    if overflow == bitops.SAT:
        return hi if value > hi else lo
    wrapped = value % (1 << width)
    return wrapped - (1 << width) if signed and wrapped > hi else wrapped


@given(data, field_type, st.integers(0, 70), i64, st.sampled_from([0, 1, 2]),
       st.sampled_from([bitops.SET, bitops.INCRBY]))
@settings(deadline=None)
def test_bitfield_write_then_read(d: bytes, ftype: tuple[bool, int], offset: int, value: int,
                                  overflow: int, opcode: int) -> None:
    signed, width = ftype
    op = bitops.FieldOp(opcode, signed, width, offset, value, overflow)
    get = bitops.FieldOp(bitops.GET, signed, width, offset, 0, overflow)
    (reply, after), new = bitops.bitfield_run(d, [op, get])
    assert new is not None and len(new) >= (offset + width - 1) // 8 + 1
    model = bits_of(d)
    old = model_field(model, offset, width, signed)
    stored = model_store(value if opcode == bitops.SET else old + value, width, signed,
                         overflow, opcode == bitops.SET)
    if stored is None:
        assert reply is None and after == old
    else:
        assert reply == (old if opcode == bitops.SET else stored)
        assert after == stored
    # bits outside the field are untouched
    out = bits_of(new)
    padded = model + [0] * (len(out) - len(model))
    assert out[:offset] == padded[:offset]
    assert out[offset + width:] == padded[offset + width:]


@given(st.one_of(st.none(), data), st.lists(st.tuples(
    st.sampled_from([bitops.GET, bitops.SET, bitops.INCRBY]), field_type,
    st.integers(0, 150), i64, st.sampled_from([0, 1, 2])), min_size=1, max_size=5))
@settings(deadline=None)
def test_bitfield_over_the_bytes_it_writes_is_bitfield_over_the_whole_string(
        d: bytes | None, specs: list[tuple]) -> None:
    """BITFIELD of a large string read whole runs over the bytes its writes span and
    writes them over the string (storedbits.Held): the same replies and the same string
    as running it over the whole string."""
    ops = [bitops.FieldOp(code, signed, width, offset, value, overflow)
           for code, (signed, width), offset, value, overflow in specs]
    replies, new = bitops.bitfield_run(d, ops)
    done = storedbits.bitfield(storedbits.Held(d or b""), ops)
    assert done is not None and done[0] == replies
    if done[1] is None:
        assert new is None or new == (d or b"")
    else:
        assert whole(done[1]) == new


def test_bitfield_parsing() -> None:
    ops = bitops.bitfield_ops([b"GET", b"u8", b"#2", b"overflow", b"FAIL",
                               b"incrby", b"i5", b"3", b"-4"])
    assert [(o.opcode, o.signed, o.bits, o.offset, o.value, o.overflow) for o in ops] == [
        (bitops.GET, False, 8, 16, 0, bitops.WRAP),
        (bitops.INCRBY, True, 5, 3, -4, bitops.FAIL)]
    for bad, text in ([b"GET", b"u64", b"0"], "Invalid bitfield type"), \
                     ([b"GET", b"I8", b"0"], "Invalid bitfield type"), \
                     ([b"OVERFLOW", b"up"], "Invalid OVERFLOW type specified"), \
                     ([b"SET", b"u8", b"0"], "syntax error"), \
                     ([b"GET", b"u8", b"#-1"], "bit offset"):
        with pytest.raises(BitError, match=text):
            bitops.bitfield_ops(bad)


def test_bitfield_reads_need_no_key_and_fail_still_pads() -> None:
    assert bitops.bitfield_run(None, bitops.bitfield_ops([b"GET", b"i8", b"0"])) == ([0], None)
    replies, new = bitops.bitfield_run(None, bitops.bitfield_ops(
        [b"OVERFLOW", b"FAIL", b"INCRBY", b"u2", b"10", b"5"]))
    assert replies == [None] and new == b"\x00\x00"


# --- LCS ---------------------------------------------------------------------------------

text = st.binary(max_size=14) | st.text("abc", max_size=20).map(str.encode)


def table(a: bytes, b: bytes) -> list[list[int]]:
    t = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            t[i][j] = t[i - 1][j - 1] + 1 if a[i - 1] == b[j - 1] else max(t[i - 1][j],
                                                                           t[i][j - 1])
    return t


def redis_walk(a: bytes, b: bytes) -> tuple[bytes, list[tuple[int, int, int, int]]]:
    """lcsCommand's walk back through the textbook table."""
    t = table(a, b)
    i, j = len(a), len(b)
    out = bytearray()
    ranges = []
    cur: list[int] | None = None
    while i > 0 and j > 0:
        emit = False
        if a[i - 1] == b[j - 1]:
            out.append(a[i - 1])
            if cur is None:
                cur = [i - 1, i - 1, j - 1, j - 1]
            elif cur[0] == i and cur[2] == j:
                cur[0] -= 1
                cur[2] -= 1
            if cur[0] == 0 or cur[2] == 0:
                emit = True
            i, j = i - 1, j - 1
        else:
            if t[i - 1][j] > t[i][j - 1]:
                i -= 1
            else:
                j -= 1
            emit = cur is not None
        if emit and cur is not None:
            ranges.append((cur[0], cur[1], cur[2], cur[3]))
            cur = None
    return bytes(reversed(out)), ranges


@given(text, text)
@settings(deadline=None)
def test_bit_parallel_lcs_equals_the_textbook_table(a: bytes, b: bytes) -> None:
    lcs = Lcs(a, b)
    t = table(a, b)
    assert all(lcs.length(i, j) == t[i][j]
               for i in range(len(a) + 1) for j in range(len(b) + 1))
    assert lcs.walk(True) == redis_walk(a, b)
    string, _ = lcs.walk(True)
    assert len(string) == t[len(a)][len(b)]


def test_lcs_of_redis_documentation_example() -> None:
    lcs = Lcs(b"ohmytext", b"mynewtext")
    assert lcs.walk(True)[0] == b"mytext" and lcs.length() == 6
    assert lcs.walk(False)[1] == [(4, 7, 5, 8), (2, 3, 0, 1)]
