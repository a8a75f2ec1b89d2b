"""Redis' glob rules (util.c stringmatchlen), as MATCH and KEYS use them.

The integration suite also compares KEYS against a real redis-server on random patterns
(tests/integration/test_keyspace.py)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dynredis.commands import glob
from dynredis.commands.glob import matcher, matching, stringmatch, stringmatch_pure

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
    assert stringmatch_pure(pattern, string) is expected


def _native():  # type: ignore[no-untyped-def]
    try:
        from dynredis import _globmatch
    except ImportError:
        return None
    return _globmatch


def test_the_compiled_build_matches_in_c() -> None:
    """What `make test` runs: the C matcher where the build made it (a pure run, with
    DYNREDIS_PURE=1, has only Python's)."""
    import os

    from dynredis import native
    if native.state == "compiled":
        assert glob.stringmatch is not stringmatch_pure
    else:
        assert os.environ.get(native.PURE_ENV) == "1" or native.state.startswith("pure")


# Patterns and strings over the bytes the rules treat apart (and a few others).
SPECIAL = b"*?[]^-\\abAB\xff"
patterns = st.lists(st.sampled_from(list(SPECIAL)), max_size=12).map(bytes)
strings = st.lists(st.sampled_from(list(b"ab[]-^*?\\AB\xff")), max_size=10).map(bytes)


@given(patterns, strings, st.booleans())
@settings(deadline=None, max_examples=3000)
def test_c_and_python_agree(pattern: bytes, string: bytes, nocase: bool) -> None:
    want = stringmatch_pure(pattern, string, nocase)
    assert stringmatch(pattern, string, nocase) is want
    assert stringmatch(pattern, string, nocase=nocase) is want
    native = _native()
    if native is not None:
        assert native.match(pattern, string, nocase) is want
        assert native.match(memoryview(pattern), bytearray(string), nocase) is want
        assert native.match(pattern, string, nocase=nocase) is want


@given(st.lists(patterns, max_size=40), strings)
@settings(deadline=None)
def test_matching_gives_the_positions_of_the_patterns_that_match(
        pats: list[bytes], string: bytes) -> None:
    want = [i for i, p in enumerate(pats) if stringmatch_pure(p, string)]
    assert matching(pats, string) == want


def test_matcher_shortcuts() -> None:
    assert matcher(None) is None and matcher(b"*") is None
    exact = matcher(b"plain")
    assert exact is not None and exact(b"plain") and not exact(b"plainer")
    glob = matcher(b"p*")
    assert glob is not None and glob(b"plainer") and not glob(b"q")


def test_many_stars_do_not_backtrack_exponentially() -> None:
    assert not stringmatch(b"a*" * 30 + b"b", b"a" * 60)
    assert not stringmatch_pure(b"a*" * 30 + b"b", b"a" * 60)
    assert stringmatch(b"[a-z]" * 100 + b"*", b"q" * 100)  # past the C matcher's stack
