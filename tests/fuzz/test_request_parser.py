"""The request parser reads client input exactly as Redis 7 does.

Each example's answer was asked of a real redis-server 7.0 (see also
tests/integration/test_hostile_input.py, which asks one on every run); the fuzzed share
checks the parser against Redis' reading transcribed (redis_model.py) on structured
inputs cut into reads at random points. `make fuzz` runs the same check 10^6 times and
more under atheris.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dynredis.resp.request import RequestParser

from .requests import build, check, multibulk


class HypothesisDraw:
    def __init__(self, data: st.DataObject) -> None:
        self.data = data

    def int(self, lo: int, hi: int) -> int:
        return self.data.draw(st.integers(lo, hi))

    def bytes(self, n: int) -> bytes:
        return self.data.draw(st.binary(min_size=n, max_size=n))


def read(*chunks: bytes, auth: bool = False) -> tuple[list[list[bytes]], bytes, int]:
    parser = RequestParser()
    ran = []
    for chunk in chunks:
        parser.feed(chunk)
        while (cmd := parser.command(auth)) is not None:
            ran.append(cmd)
    return ran, parser.error, parser.held()


PING = [b"PING"]

# (input, commands run, protocol error): Redis 7.0's own answers.
REDIS_ANSWERS = [
    (b"*2147483647\r\n", [], b""),  # waits for 2^31-1 elements, allocating nothing
    (b"*2147483648\r\n", [], b"invalid multibulk length"),
    (b"*4294967295\r\n", [], b"invalid multibulk length"),
    (b"*3000000000\r\n", [], b"invalid multibulk length"),
    (b"*1\r\n>2147483647\r\n", [], b"expected '$', got '>'"),
    (b"*1\r\n+PING\r\n", [], b"expected '$', got '+'"),
    (b"*1\r\n=8\r\ntxt:PING\r\n", [], b"expected '$', got '='"),
    (b"*1\r\n\xff\r\n", [], b"expected '$', got '\xff'"),
    (b"*1\r\n$-10\r\n", [], b"invalid bulk length"),
    (b"*1\r\n$2000000000\r\n", [], b"invalid bulk length"),
    (b"*1\r\n$536870913\r\n", [], b"invalid bulk length"),
    (b"*1\r\n$536870912\r\n", [], b""),
    (b"*1\r\n$04\r\nPING\r\n", [], b"invalid bulk length"),
    (b"*1\r\n$\r\n", [], b"invalid bulk length"),
    (b"*-10\r\nPING\r\n", [PING], b""),
    (b"*-1\r\nPING\r\n", [PING], b""),
    (b"*0\r\nPING\r\n", [PING], b""),
    (b"*-0\r\nPING\r\n", [], b"invalid multibulk length"),
    (b"*01\r\n$4\r\nPING\r\n", [], b"invalid multibulk length"),
    (b"*+1\r\n$4\r\nPING\r\n", [], b"invalid multibulk length"),
    (b"* 1\r\n$4\r\nPING\r\n", [], b"invalid multibulk length"),
    (b"*1 \r\n", [], b"invalid multibulk length"),
    (b"*\r\n", [], b"invalid multibulk length"),
    (b"*1\n$4\r\nPING\r\n", [], b"invalid multibulk length"),
    # The byte after a header's \r and the two after a body are skipped unread.
    (b"*1\r\n$4\r\nPINGxx*1\r\n$4\r\nPING\r\n", [PING, PING], b""),
    (b"*1\r\n$4\rXPING\r\n", [PING], b""),
    (b"*1\rX\n$4\r\nPING\r\n", [], b"expected '$', got ' '"),
    (b"*1\r\r\n$4\r\nPING\r\n", [], b"expected '$', got ' '"),
    # A NUL before the terminator hides it (Redis searches with strchr).
    (b"*1\x00\r\n$4\r\nPING\r\n", [], b""),
    (b"*1\r\n$4\x00\r\nPING\r\n", [], b""),
    (b"PI\x00NG\r\n", [], b""),
    # Inline commands.
    (b"PING\nPING\r\n", [PING, PING], b""),
    (b"\r\nPING\r\n", [PING], b""),
    (b"   \r\nPING\r\n", [PING], b""),
    (b"PING\r\r\n", [PING], b""),
    (b'ECHO "a"b\r\n', [], b"unbalanced quotes in request"),
    (b"*1\r\n$4\r\nPING\r\n\r\nPING\r\n", [PING, PING], b""),
    (b"SET a \"b c\"\r\nGET a\n", [[b"SET", b"a", b"b c"], [b"GET", b"a"]], b""),
]


@pytest.mark.parametrize(("data", "commands", "error"), REDIS_ANSWERS)
def test_what_redis_answers(data: bytes, commands: list[list[bytes]], error: bytes) -> None:
    assert read(data)[:2] == (commands, error)
    # Byte by byte, the same.
    assert read(*(data[i:i + 1] for i in range(len(data))))[:2] == (commands, error)


@pytest.mark.parametrize(("data", "error"), [
    (b"*11\r\n", b"unauthenticated multibulk length"),
    (b"*1\r\n$16385\r\n", b"unauthenticated bulk length"),
])
def test_limits_before_auth(data: bytes, error: bytes) -> None:
    assert read(data, auth=True)[:2] == ([], error)
    assert read(data, auth=False)[:2] == ([], b"")
    assert read(data.replace(b"11", b"10").replace(b"16385", b"16384"), auth=True)[:2] == \
        ([], b"")


@pytest.mark.parametrize(("data", "error"), [
    (b"x" * (64 * 1024 + 1), b"too big inline request"),
    (b"*" + b"1" * (64 * 1024), b"too big mbulk count string"),
    (b"*1\r\n$" + b"1" * (64 * 1024), b"too big bulk count string"),
])
def test_unterminated_lines_stop_at_64_kb(data: bytes, error: bytes) -> None:
    assert read(data[:64 * 1024])[1] == b""
    assert read(data)[1] == error


def test_framing_never_drifts() -> None:
    """Issue 12, finding 2: non-bulk elements were taken as arguments, and the bytes
    consumed miscounted, so that a later INCR ran twice. Now the first foreign element
    ends the connection, and nothing after it runs."""
    data = b"*1\r\n=8\r\ntxt:PING\r\n" * 7 + multibulk([b"INCR", b"ctr"]) + b"PING\r\n"
    assert read(data)[:2] == ([], b"expected '$', got '='")
    valid = multibulk([b"INCR", b"ctr"]) + b"PING\r\n" + multibulk([b"SET", b"k", b"\r\n$3"])
    ran, error, held = read(valid)
    assert ran == [[b"INCR", b"ctr"], PING, [b"SET", b"k", b"\r\n$3"]]
    assert (error, held) == (b"", 0)


def test_nothing_is_allocated_for_what_is_only_declared() -> None:
    parser = RequestParser()
    parser.feed(b"*2147483647\r\n$536870912\r\nabc")
    assert parser.command(False) is None
    assert parser.held() == 3  # the bytes that came, not the ones announced


def test_a_big_bulk_arriving_in_pieces_is_held_once() -> None:
    body = bytes(range(256)) * 1000
    frame = multibulk([b"SET", b"k", body]) + b"PING\r\n"
    parser = RequestParser()
    ran = []
    for i in range(0, len(frame), 1000):
        parser.feed(frame[i:i + 1000])
        assert parser.held() <= i + 1000  # never more than what arrived
        while (cmd := parser.command(False)) is not None:
            ran.append(cmd)
    assert ran == [[b"SET", b"k", body], PING]
    assert parser.held() == 0


FUZZ_EXAMPLES = int(os.environ.get("DYNREDIS_FUZZ_EXAMPLES", "400"))


@settings(max_examples=FUZZ_EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_fuzzed_input_is_read_as_redis_reads_it(data: st.DataObject) -> None:
    chunks, auth, max_bulk = build(HypothesisDraw(data))
    check(chunks, auth, max_bulk)
