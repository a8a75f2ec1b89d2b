"""Inline commands (`PING\\r\\n` typed into telnet), split exactly as Redis' sdssplitargs
splits them: blanks (C's isspace) separate words; inside a word only space, \\t, \\n and
\\r end it (\\v and \\f belong to the word); a double or single quote anywhere in a word
opens a quoted part of it; "double quotes" understand \\n \\r \\t \\b \\a \\xHH and escape
any other character with a backslash, 'single quotes' only \\'; a closing quote must be
followed by a blank or the end of the line. An unbalanced quote is a protocol error
(None)."""

from __future__ import annotations

_ESCAPES = {ord("n"): b"\n", ord("r"): b"\r", ord("t"): b"\t", ord("b"): b"\b",
            ord("a"): b"\a"}
_HEX = b"0123456789abcdefABCDEF"
_ISSPACE = b" \t\n\v\f\r"
_WORD_END = b" \t\n\r"


def split_inline(line: bytes) -> list[bytes] | None:
    if b'"' not in line and b"'" not in line and b"\v" not in line and b"\f" not in line:
        return line.split()  # the common case: the same words, at C speed
    words: list[bytes] = []
    i, n = 0, len(line)
    while True:
        while i < n and line[i] in _ISSPACE:
            i += 1
        if i >= n:
            return words
        word = bytearray()
        in_dq = in_sq = False
        while True:
            if i >= n:
                if in_dq or in_sq:
                    return None  # unterminated quotes
                break
            c = line[i]
            if in_dq:
                if c == 0x5C and i + 3 < n and line[i + 1] == ord("x") \
                        and line[i + 2] in _HEX and line[i + 3] in _HEX:
                    word.append(int(line[i + 2 : i + 4], 16))
                    i += 3
                elif c == 0x5C and i + 1 < n:
                    i += 1
                    word += _ESCAPES.get(line[i], bytes([line[i]]))
                elif c == ord('"'):
                    if i + 1 < n and line[i + 1] not in _ISSPACE:
                        return None  # a closing quote must be followed by a blank
                    i += 1
                    break
                else:
                    word.append(c)
            elif in_sq:
                if c == 0x5C and i + 1 < n and line[i + 1] == ord("'"):
                    i += 1
                    word.append(ord("'"))
                elif c == ord("'"):
                    if i + 1 < n and line[i + 1] not in _ISSPACE:
                        return None
                    i += 1
                    break
                else:
                    word.append(c)
            elif c in _WORD_END:
                i += 1
                break
            elif c == ord('"'):
                in_dq = True
            elif c == ord("'"):
                in_sq = True
            else:
                word.append(c)
            i += 1
        words.append(bytes(word))
