"""Redis' glob rules (util.c stringmatchlen), as MATCH and KEYS use them.

The integration suite also compares KEYS against a real redis-server on random patterns
(tests/integration/test_keyspace.py)."""

from __future__ import annotations

import pytest

from dynredis.commands.glob import matcher, stringmatch

CASES = [
    (b"*", b"anything", True),
    (b"*", b"", False),  # Redis' quirk: KEYS/SCAN special-case "*" before matching
    (b"", b"", True),
    (b"", b"a", False),
    (b"h?llo", b"hello", True),
    (b"h?llo", b"hllo", False),
    (b"h*llo", b"hllo", True),
    (b"h*llo", b"heeeello", True),
    (b"h[ae]llo", b"hallo", True),
    (b"h[ae]llo", b"hillo", False),
    (b"h[^e]llo", b"hallo", True),
    (b"h[^e]llo", b"hello", False),
    (b"h[a-b]llo", b"hbllo", True),
    (b"h[b-a]llo", b"hallo", True),  # a reversed range is the same range
    (b"h[a-b]llo", b"hcllo", False),
    (b"h\\*llo", b"h*llo", True),
    (b"h\\*llo", b"hello", False),
    (b"[\\]]", b"]", True),
    (b"[a-]", b"]", True),  # "a-]" is a range up to ']'; the class is unclosed
    (b"[abc", b"b", True),  # an unclosed class runs to the end of the pattern
    (b"[^", b"x", True),
    (b"[", b"x", False),
    (b"ab\\", b"ab\\", True),  # a trailing backslash matches itself
    (b"a**b", b"ab", True),
    (b"a*b*c", b"aXbYc", True),
    (b"a*b*c", b"aXbY", False),
    (b"*a", b"bbbba", True),
    (b"user:*:name", b"user:42:name", True),
    (b"\xff*", b"\xff\x00", True),  # bytes, not text
    (b"ABC", b"abc", False),  # case-sensitive
]


@pytest.mark.parametrize(("pattern", "string", "expected"), CASES)
def test_stringmatch(pattern: bytes, string: bytes, expected: bool) -> None:
    assert stringmatch(pattern, string) is expected


def test_matcher_shortcuts() -> None:
    assert matcher(None) is None and matcher(b"*") is None
    exact = matcher(b"plain")
    assert exact is not None and exact(b"plain") and not exact(b"plainer")
    glob = matcher(b"p*")
    assert glob is not None and glob(b"plainer") and not glob(b"q")


def test_many_stars_do_not_backtrack_exponentially() -> None:
    assert not stringmatch(b"a*" * 30 + b"b", b"a" * 60)
