"""Inline commands (`PING\\r\\n` typed into telnet), split the way Redis' sdssplitargs does:
whitespace separates words, "double quotes" understand \\n \\r \\t \\b \\a \\\\ \\" and \\xHH
escapes, 'single quotes' only \\'. An unbalanced quote is a protocol error (None)."""

from __future__ import annotations

_ESCAPES = {ord("n"): b"\n", ord("r"): b"\r", ord("t"): b"\t", ord("b"): b"\b",
            ord("a"): b"\a"}
_HEX = b"0123456789abcdefABCDEF"


def split_inline(line: bytes) -> list[bytes] | None:
    if b'"' not in line and b"'" not in line:
        return line.split()  # the same whitespace as C's isspace(): " \t\n\v\f\r"
    words: list[bytes] = []
    i, n = 0, len(line)
    while True:
        while i < n and line[i] in b" \t\n\r\v\f":
            i += 1
        if i >= n:
            return words
        word = bytearray()
        in_dq = in_sq = False
        while True:
            if in_dq:
                if i >= n:
                    return None
                c = line[i]
                if c == 0x5C and i + 3 < n and line[i + 1] == ord("x") \
                        and line[i + 2] in _HEX and line[i + 3] in _HEX:
                    word.append(int(line[i + 2 : i + 4], 16))
                    i += 3
                elif c == 0x5C and i + 1 < n:
                    i += 1
                    word += _ESCAPES.get(line[i], bytes([line[i]]))
                elif c == ord('"'):
                    if i + 1 < n and line[i + 1] not in b" \t\n\r\v\f":
                        return None  # closing quote must be followed by a space
                    in_dq = False
                    i += 1
                    break
                else:
                    word.append(c)
            elif in_sq:
                if i >= n:
                    return None
                c = line[i]
                if c == 0x5C and i + 1 < n and line[i + 1] == ord("'"):
                    i += 1
                    word.append(ord("'"))
                elif c == ord("'"):
                    if i + 1 < n and line[i + 1] not in b" \t\n\r\v\f":
                        return None
                    in_sq = False
                    i += 1
                    break
                else:
                    word.append(c)
            else:
                if i >= n or line[i] in b" \t\n\r\v\f":
                    break
                c = line[i]
                if c == ord('"') and not word:
                    in_dq = True
                elif c == ord("'") and not word:
                    in_sq = True
                else:
                    word.append(c)
            i += 1
        words.append(bytes(word))
