"""Redis' glob-style pattern matching (util.c `stringmatchlen`) on bytes: the one matcher
of KEYS, SCAN MATCH (cluster/keyscan.py) and CONFIG GET (case-insensitive there).

`*` any run of bytes, `?` one byte, `[abc]` `[^abc]` `[a-z]` a class (a reversed range
counts as the same range, `\\` escapes inside a class), `\\x` the byte x. Malformed
patterns behave as in Redis: an unclosed `[` class runs to the end of the pattern, a
trailing `\\` matches a backslash.

Redis matches recursively; here the pattern is first split into one-byte tokens and
stars, and matched with the classic single-backtrack loop (every token but `*` consumes
exactly one byte, so the last star is the only backtracking point that matters). The
results are Redis', including its one quirk: an empty string matches only the empty
pattern (Redis' KEYS and SCAN special-case the pattern `*` before matching).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

# Token kinds: a star, any byte, a literal byte, a class (negated?, bytes, ranges).
_STAR = 0
_ANY = 1
_LIT = 2
_CLASS = 3

Token = tuple


@lru_cache(maxsize=256)
def compile_pattern(pattern: bytes) -> tuple[Token, ...]:
    """Split a pattern into tokens, parsing classes and escapes as Redis does."""
    toks: list[Token] = []
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == 0x2A:  # '*': consecutive stars are one
            if not toks or toks[-1][0] != _STAR:
                toks.append((_STAR,))
            i += 1
        elif ch == 0x3F:  # '?'
            toks.append((_ANY,))
            i += 1
        elif ch == 0x5B:  # '['
            i += 1
            neg = i < n and pattern[i] == 0x5E  # '^'
            if neg:
                i += 1
            singles: set[int] = set()
            ranges: list[tuple[int, int]] = []
            while True:
                if i >= n:  # unclosed: the class runs to the end of the pattern
                    break
                c = pattern[i]
                if c == 0x5C and n - i >= 2:  # '\\' escapes the next byte
                    singles.add(pattern[i + 1])
                    i += 2
                    continue
                if c == 0x5D:  # ']'
                    i += 1
                    break
                if n - i >= 3 and pattern[i + 1] == 0x2D:  # 'a-z'
                    lo, hi = c, pattern[i + 2]
                    if lo > hi:
                        lo, hi = hi, lo
                    ranges.append((lo, hi))
                    i += 3
                    continue
                singles.add(c)
                i += 1
            toks.append((_CLASS, neg, frozenset(singles), tuple(ranges)))
        elif ch == 0x5C and n - i >= 2:  # '\\x'
            toks.append((_LIT, pattern[i + 1]))
            i += 2
        else:
            toks.append((_LIT, ch))
            i += 1
    return tuple(toks)


def _one(tok: Token, c: int) -> bool:
    kind = tok[0]
    if kind == _LIT:
        return tok[1] == c
    if kind == _ANY:
        return True
    hit = c in tok[2] or any(lo <= c <= hi for lo, hi in tok[3])
    return hit != tok[1]


def stringmatch_pure(pattern: bytes, string: bytes, nocase: bool = False) -> bool:
    """True if `string` matches the glob `pattern` (Redis' rules); `nocase` compares
    ASCII letters case-insensitively, as Redis' nocase mode (which lowers every byte of
    the pattern and of the string it compares: lowering both first is the same)."""
    if nocase:
        pattern = pattern.lower()
        string = string.lower()
    if not string:
        return not pattern
    toks = compile_pattern(pattern)
    nt, ns = len(toks), len(string)
    ti = si = 0
    star_ti = -1
    star_si = 0
    while si < ns:
        if ti < nt:
            tok = toks[ti]
            if tok[0] == _STAR:
                if ti == nt - 1:
                    return True  # a final star takes the rest
                star_ti, star_si = ti, si
                ti += 1
                continue
            if _one(tok, string[si]):
                ti += 1
                si += 1
                continue
        if star_ti < 0:
            return False
        star_si += 1
        si = star_si
        ti = star_ti + 1
    while ti < nt and toks[ti][0] == _STAR:
        ti += 1
    return ti == nt


# The matcher in C (dynredis/csrc/globmatch.c: the same tokens and loop), built with the
# compiled modules; else stringmatch_pure. `matching`: the positions of the patterns of a
# list that a string matches (PUBLISH against every subscribed pattern).
stringmatch: Callable[..., bool]
matching: Callable[[list[bytes], bytes], list[int]]
try:
    from .._globmatch import match as stringmatch
    from .._globmatch import matching
except ImportError:
    stringmatch = stringmatch_pure

    def matching(patterns: list[bytes], string: bytes) -> list[int]:
        return [i for i, p in enumerate(patterns) if stringmatch_pure(p, string)]


def matcher(pattern: bytes | None):  # type: ignore[no-untyped-def]
    """A predicate for MATCH `pattern` (None and `*` match every key, as in Redis)."""
    if pattern is None or pattern == b"*":
        return None
    toks = compile_pattern(pattern)
    if all(t[0] == _LIT for t in toks):
        literal = bytes(t[1] for t in toks)
        return lambda key: key == literal
    return lambda key: stringmatch(pattern, key)
