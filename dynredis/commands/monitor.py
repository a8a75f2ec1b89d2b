"""MONITOR: every command this node's clients send, as Redis prints it.

Only the commands this node receives from its clients (the cluster has no single
stream: a command sent to another node shows in that node's MONITOR), in Redis' line
format: `+<unix time.µs> [<db> <client address>] "arg" ...`, arguments escaped as
Redis' sdscatrepr does. As in Redis, admin commands (CONFIG, MONITOR ...) are not shown,
AUTH's arguments and HELLO's credentials show as "(redacted)", and the commands of a
MULTI show when EXEC runs them (after EXEC's own line, where Redis shows it last).
"""

from __future__ import annotations

import time

from ..resp import encode as resp
from .context import Context
from .table import Command, command

HIDDEN = frozenset({"monitor"})
REDACTED = b"(redacted)"
_ESCAPES = {ord("\\"): b"\\\\", ord('"'): b'\\"', ord("\n"): b"\\n", ord("\r"): b"\\r",
            ord("\t"): b"\\t", 7: b"\\a", 8: b"\\b"}


def repr_arg(arg: bytes) -> bytes:
    out = bytearray(b'"')
    for ch in arg:
        esc = _ESCAPES.get(ch)
        if esc is not None:
            out += esc
        elif 32 <= ch < 127:
            out.append(ch)
        else:
            out += b"\\x%02x" % ch
    out += b'"'
    return bytes(out)


def monitor_line(args: list[bytes], db: int, addr: str, now: float) -> bytes:
    return (b"+%.6f [%d %s] " % (now, db, addr.encode())
            + b" ".join(repr_arg(a) for a in args) + b"\r\n")


def shown(cmd: Command) -> bool:
    return cmd.name not in HIDDEN and "admin" not in cmd.flags


def feed(monitors: list, cmd: Command, args: list[bytes], db: int, addr: str) -> None:
    """Send the line of a command to every monitoring client."""
    if not shown(cmd):
        return
    if cmd.name == "auth":
        args = [args[0]] + [REDACTED] * (len(args) - 1)
    elif cmd.name == "hello":
        upper = [a.upper() for a in args]
        if b"AUTH" in upper:
            i = upper.index(b"AUTH")
            args = args[:i + 1] + [REDACTED] * min(2, len(args) - i - 1) + args[i + 3:]
    line = monitor_line(args, db, addr, time.time())
    for m in monitors:
        m.push(line)


ERR_DENY_BLOCKING = resp.error("ERR MONITOR isn't allowed for DENY BLOCKING client")


@command("monitor", 1, ("admin", "noscript", "loading", "stale"), group="server",
         summary="Streams the commands this node receives (not the whole cluster's).",
         since="1.0.0")
def cmd_monitor(c: Context, args: list[bytes]) -> bytes:
    if not c.may_block:  # run by EXEC: a reply per command is expected, as in Redis
        return ERR_DENY_BLOCKING
    c.start_monitor()
    return resp.OK
