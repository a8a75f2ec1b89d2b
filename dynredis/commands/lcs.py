"""The longest common subsequence of two strings, as Redis 7.0's LCS reports it.

Redis fills an (|a|+1) x (|b|+1) table of LCS lengths and walks it back from the
end; the string, the match ranges and their order depend on that walk's tie rule.
Here each row of the table is one integer of |b| bits (the bit-parallel LCS of
Allison-Dix and Hyyro: bit j is 0 where the row's length grows at column j+1), so
the table costs |a| * |b| bits instead of 32-bit cells and is built |b|/64 columns
per machine operation, and the walk back reads lengths from the rows with the same
tie rule, giving Redis' exact answer.
"""

from __future__ import annotations

MAX_TABLE_BYTES = 512 * 1024 * 1024
"""Redis' bound (its proto-max-bulk-len) on the table of 32-bit cells it would fill: a
larger one is refused with its error before anything is computed."""


class Lcs:
    """The LCS table of `a` and `b`, and Redis' walk back through it."""

    __slots__ = ("a", "b", "rows", "full")

    def __init__(self, a: bytes, b: bytes) -> None:
        self.a = a
        self.b = b
        masks: dict[int, int] = {}
        for j, ch in enumerate(b):
            masks[ch] = masks.get(ch, 0) | (1 << j)
        self.full = (1 << len(b)) - 1
        v = self.full
        rows = [v]
        for ch in a:
            u = v & masks.get(ch, 0)
            v = ((v + u) | (v - u)) & self.full
            rows.append(v)
        self.rows = rows

    def length(self, i: int = -1, j: int = -1) -> int:
        """LCS(a[:i], b[:j]); the whole strings by default."""
        if i < 0:
            i = len(self.a)
        if j < 0:
            j = len(self.b)
        return j - (self.rows[i] & ((1 << j) - 1)).bit_count()

    def walk(self, want_string: bool) -> tuple[bytes, list[tuple[int, int, int, int]]]:
        """(the LCS string if wanted, the matched ranges (a_start, a_end, b_start, b_end)
        from the end of the strings backwards), as lcsCommand walks its table."""
        a, b, rows = self.a, self.b, self.rows
        i, j = len(a), len(b)
        here = self.length(i, j)  # LCS(i, j), kept up to date along the walk
        out = bytearray()
        ranges: list[tuple[int, int, int, int]] = []
        open_range = False
        a_start = a_end = b_start = b_end = 0
        while i > 0 and j > 0:
            emit = False
            if a[i - 1] == b[j - 1]:
                if want_string:
                    out.append(a[i - 1])
                if not open_range:
                    open_range = True
                    a_start = a_end = i - 1
                    b_start = b_end = j - 1
                elif a_start == i and b_start == j:
                    a_start -= 1
                    b_start -= 1
                else:
                    emit = True
                if a_start == 0 or b_start == 0:
                    emit = True
                i -= 1
                j -= 1
                here -= 1
            else:
                up = j - (rows[i - 1] & ((1 << j) - 1)).bit_count()  # LCS(i-1, j)
                left = here - 1 + ((rows[i] >> (j - 1)) & 1)  # LCS(i, j-1)
                if up > left:
                    i -= 1
                    here = up
                else:
                    j -= 1
                    here = left
                if open_range:
                    emit = True
            if emit:
                ranges.append((a_start, a_end, b_start, b_end))
                open_range = False
        out.reverse()
        return bytes(out), ranges


def too_big(a_len: int, b_len: int) -> bool:
    """Whether Redis refuses the LCS of strings of these lengths (its table's size)."""
    return (a_len + 1) * (b_len + 1) * 4 > MAX_TABLE_BYTES
