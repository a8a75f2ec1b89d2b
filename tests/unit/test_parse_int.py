"""Integer arguments are read as Redis' string2ll reads them."""

from __future__ import annotations

from dynredis.commands.table import parse_int


def test_integers_as_redis_reads_them() -> None:
    assert parse_int(b"0") == 0 and parse_int(b"-5") == -5
    assert parse_int(b"9223372036854775807") == 2**63 - 1
    assert parse_int(b"-9223372036854775808") == -(2**63)
    # Python's int() takes all of these; Redis answers "value is not an integer".
    for raw in (b"1_0", b"-1_000", b" 1", b"1 ", b"+1", b"01", b"-0", b"", b"-",
                b"9223372036854775808", b"\xd9\xa3", b"1\x00"):
        assert parse_int(raw) is None, raw
