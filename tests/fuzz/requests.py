"""Structure-aware inputs for the request parser, and the check against Redis' model.

One grammar, two drivers (whose draws, once atheris' bytes run out, are the lowest
value: the lowest choice is always a cheap, common one): hypothesis (the test suite's bounded share, shrinking to a
small failing input) and atheris (`make fuzz`, coverage-guided, 10^6 inputs and more).
An input is a run of pieces, each a valid command (multibulk or inline, sometimes AUTH),
or one of the ways a request goes wrong (odd counts and lengths, foreign element types,
bodies longer or shorter than declared, stray terminators, NUL bytes, 64 KB lines),
cut into reads at arbitrary points.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar

from dynredis.resp.request import RequestParser

from .redis_model import RedisReader

T = TypeVar("T")


class Draw(Protocol):
    def int(self, lo: int, hi: int) -> int: ...
    def bytes(self, n: int) -> bytes: ...


NUMBERS = (b"0", b"1", b"2", b"3", b"-1", b"-0", b"01", b"+1", b" 1", b"1 ", b"", b"-",
           b"10", b"11", b"16384", b"16385", b"32768", b"2147483647", b"2147483648",
           b"4294967295", b"3000000000", b"536870912", b"536870913", b"2000000000",
           b"9223372036854775807", b"9223372036854775808", b"-9223372036854775808",
           b"-9223372036854775809", b"99999999999999999999", b"abc", b"1\x00", b"\x00",
           b"12345678901234567890123")
TERMINATORS = (b"\r\n", b"\r\n", b"\r\n", b"\r\n", b"\n", b"\r", b"\rX", b"", b"\r\r\n",
               b"\x00\r\n", b"\n\r")
MARKERS = b"+-:=(,>_#%~|!*$ a\x00\r\n\xff"
WORDS = (b"PING", b"ECHO", b"SET", b"GET", b"AUTH", b"a", b"", b" ", b"\"", b"'", b"\\",
         b"\"a b\"", b"'x'", b"\"\\x41\"", b"\"unterminated", b"\t", b"\x00", b"x\"y\"")


def pick(d: Draw, seq: Sequence[T]) -> T:
    return seq[d.int(0, len(seq) - 1)]


def arg(d: Draw) -> bytes:
    size = d.int(0, 99)
    if size < 90:
        return d.bytes(d.int(0, 12))
    # Lengths at the limits: 16384 (before AUTH), 32 KB (a big argument), more.
    n = pick(d, (16383, 16384, 16385, 32767, 32768, 40000))
    return d.bytes(4) + b"v" * (n - 4)


def multibulk(args: list[bytes]) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%b\r\n" % (len(a), a) for a in args)


# Probes (see `build`): commands whose replies say exactly what ran.
PROBE_WORDS = (b"PING", b"ECHO", b"echo", b"a", b"", b" ", b"\"", b"'", b"\\", b"\"a b\"",
               b"'x'", b"\"\\x41\"", b"\"unterminated", b"\t", b"\x00", b"x\"y\"")


def probe(d: Draw) -> bytes:
    """A command a real redis-server answers with what it was given: ECHO or PING."""
    args = [pick(d, (b"ECHO", b"PING", b"echo"))]
    args += [d.bytes(d.int(0, 12)) for _ in range(d.int(0, 2))]
    return multibulk(args)


def piece(d: Draw, probes: bool = False) -> bytes:
    kind = d.int(0, 99)
    if kind < 35:  # a valid command
        if probes:
            return probe(d)
        count = d.int(5, 13) if d.int(0, 9) == 9 else d.int(1, 4)
        return multibulk([arg(d) for _ in range(count)])
    if kind < 45:  # an inline command
        words = b" ".join(pick(d, PROBE_WORDS if probes else WORDS)
                          for _ in range(d.int(0, 4)))
        return words + pick(d, (b"\r\n", b"\n", b"\r\r\n", b""))
    if kind < 50:  # AUTH (the limits before it are smaller)
        if probes:
            return probe(d)
        return multibulk([b"AUTH", d.bytes(d.int(0, 3))])
    if kind < 60:  # a multibulk count of any kind
        return b"*" + pick(d, NUMBERS) + pick(d, TERMINATORS)
    if kind < 70:  # one element of any kind inside a command
        marker = bytes([pick(d, MARKERS)])
        body = pick(d, NUMBERS) if d.int(0, 1) else d.bytes(d.int(0, 6))
        return b"*%d\r\n" % d.int(1, 2) + marker + body + pick(d, TERMINATORS)
    if kind < 78:  # a bulk whose body is not its declared length
        body = d.bytes(d.int(0, 8))
        declared = max(0, len(body) + d.int(-3, 3))
        return b"*1\r\n$%d\r\n" % declared + body + pick(d, TERMINATORS)
    if kind < 88:  # anything
        return d.bytes(d.int(0, 24))
    if kind < 90 and not probes:  # a long line without its terminator (64 KB limits)
        head = pick(d, (b"", b"*", b"*1\r\n$", b"*2\r\n$1\r\na\r\n$"))
        return head + b"1" * d.int(65500, 65600)
    return pick(d, (b"\r\n", b"\n", b" ", b"\r", b"*0\r\n", b"*-1\r\n"))


def build(d: Draw) -> tuple[list[bytes], bool, int]:
    """An input as reads, whether AUTH is required at first, and proto-max-bulk-len."""
    data = b"".join(piece(d) for _ in range(d.int(1, 8)))
    return cut(d, data), d.int(0, 2) == 0, pick(d, (512 << 20, 512 << 20, 1 << 20, 5))


def build_probes(d: Draw) -> bytes:
    """An input for a real redis-server (no password, its default limits, no 64 KB
    lines, whose outcome depends on how the server's reads fall): its valid commands
    are ECHO and PING, whose replies tell what ran."""
    return b"".join(piece(d, probes=True) for _ in range(d.int(1, 8)))


def cut(d: Draw, data: bytes) -> list[bytes]:
    """`data` as reads: cut at a few points, or a byte at a time."""
    cuts = sorted({d.int(0, len(data)) for _ in range(d.int(0, 6))})
    if d.int(0, 19) == 19 and len(data) < 200:
        cuts = list(range(len(data)))  # a byte at a time
    chunks = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    return [c for c in chunks if c]


def check(chunks: list[bytes], auth_required: bool, max_bulk: int) -> None:
    """The parser reads `chunks` exactly as Redis' model does: after every read, the same
    commands run, the same protocol error, the same bytes held."""
    model_auth = [auth_required]

    def model_ran(argv: list[bytes]) -> None:
        if argv[0].upper() == b"AUTH":
            model_auth[0] = False

    model = RedisReader(max_bulk, lambda: model_auth[0], model_ran)
    parser = RequestParser(max_bulk)
    need_auth = auth_required
    ran: list[list[bytes]] = []
    for chunk in chunks:
        model.read(chunk)
        parser.feed(chunk)
        while (cmd := parser.command(need_auth)) is not None:
            ran.append(cmd)
            if cmd[0].upper() == b"AUTH":
                need_auth = False
        assert ran == model.executed, (chunks, ran, model.executed)
        assert (parser.error or None) == model.error, (chunks, parser.error, model.error)
        if model.error is not None:
            return
        assert parser.held() == model.held(), (chunks, parser.held(), model.held())


def expected_replies(commands: list[list[bytes]]) -> list[bytes | None]:
    """What a server answers each probe command (None: some error, such as an unknown
    command's, whose exact text is not what is checked here)."""
    out: list[bytes | None] = []
    for argv in commands:
        name = argv[0].lower()
        if name == b"echo" and len(argv) == 2:
            out.append(argv[1])
        elif name == b"ping" and len(argv) <= 2:
            out.append(argv[1] if len(argv) == 2 else b"PONG")
        else:
            out.append(None)
    return out
