"""The command table: name -> handler, arity, flags and key positions.

Arity follows Redis: positive means exactly that many words (name included),
negative means at least that many. Flags and key positions feed `COMMAND INFO`,
which cluster-aware clients read to route keys.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from ..resp import encode as resp

if TYPE_CHECKING:
    from .context import Context

# The keys of a command whose keys are not at fixed positions ("movablekeys", e.g. after
# a numkeys argument): the command's words in, its keys out (None: arguments invalid).
KeysOf = Callable[[list[bytes]], "list[bytes] | None"]

Handler = Callable[["Context", list[bytes]], bytes | None]
"""A command: its reply, or None when it deferred (the reply comes later, in order)."""


@dataclass
class Command:
    name: str
    handler: Handler
    arity: int
    flags: tuple[str, ...]
    first_key: int = 0
    last_key: int = 0
    step: int = 0
    group: str = "generic"
    summary: str = ""
    since: str = "1.0.0"
    subcommands: dict[str, Command] = field(default_factory=dict)
    acl: tuple[str, ...] = ()
    keys_of: KeysOf | None = None

    def arity_ok(self, nargs: int) -> bool:
        a = self.arity
        return nargs == a if a > 0 else nargs >= -a


TABLE: Final[dict[bytes, Command]] = {}


def command(
    name: str,
    arity: int,
    flags: tuple[str, ...] = (),
    first_key: int = 0,
    last_key: int = 0,
    step: int = 0,
    group: str = "generic",
    summary: str = "",
    since: str = "1.0.0",
    keys_of: KeysOf | None = None,
) -> Callable[[Handler], Handler]:
    """Register a handler; it answers with reply bytes or None after deferring."""

    def register(fn: Handler) -> Handler:
        cmd = Command(name.lower(), fn, arity, flags, first_key, last_key, step, group,
                      summary, since, keys_of=keys_of)
        TABLE[name.lower().encode()] = cmd
        TABLE[name.upper().encode()] = cmd
        return fn

    return register


def subcommand(
    parent: str,
    name: str,
    arity: int,
    flags: tuple[str, ...] = (),
    first_key: int = 0,
    last_key: int = 0,
    step: int = 0,
    summary: str = "",
    since: str = "1.0.0",
) -> Callable[[Handler], Handler]:
    """Register `parent name ...` (e.g. CONFIG GET) under an already registered container.

    Its arity counts the container's name too (CONFIG GET pattern is 3), as in Redis;
    `dispatch` checks it and answers Redis' `'config|get'` arity error.
    """

    def register(fn: Handler) -> Handler:
        top = TABLE[parent.lower().encode()]
        top.subcommands[name.lower()] = Command(
            f"{top.name}|{name.lower()}", fn, arity, flags, first_key, last_key, step,
            top.group, summary, since)
        return fn

    return register


def find_subcommand(top: Command, args: list[bytes]) -> Command | bytes:
    """The subcommand of `top` that args[1] names, or Redis' error for an unknown one or
    one of the wrong arity (what a container answers, and what MULTI refuses to queue)."""
    sub = top.subcommands.get(args[1].decode("utf-8", "replace").lower())
    if sub is None:
        return err_subcommand(args[1], top.name)
    if not sub.arity_ok(len(args)):
        return err_arity(sub.name)
    return sub


def dispatch(parent: str, c: Context, args: list[bytes]) -> bytes | None:
    """Run the registered subcommand named by args[1] (arity checked as Redis does)."""
    sub = find_subcommand(TABLE[parent.lower().encode()], args)
    if isinstance(sub, bytes):
        return sub
    return sub.handler(c, args)


def lookup_full(name: bytes) -> Command | None:
    """A command or a `container|sub` subcommand by name (for COMMAND INFO/DOCS)."""
    top, sep, sub = name.partition(b"|")
    cmd = lookup(top)
    if cmd is None or not sep:
        return cmd
    return cmd.subcommands.get(sub.decode("utf-8", "replace").lower())


def help_reply(c: Context, name: str, lines: list[str]) -> bytes:
    """The reply of `<NAME> HELP`: simple strings, as Redis formats them."""
    head = f"{name.upper()} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    return resp.encode([resp.Simple(x) for x in [head, *lines]], c.proto)


def lookup(name: bytes) -> Command | None:
    cmd = TABLE.get(name)
    if cmd is None:
        cmd = TABLE.get(name.lower())
    return cmd


def commands() -> list[Command]:
    """Every distinct command, sorted by name."""
    return sorted({id(c): c for c in TABLE.values()}.values(), key=lambda c: c.name)


# --- Redis' error texts (clients match on some of them) ---------------------------


def err_arity(name: str) -> bytes:
    return resp.error(f"ERR wrong number of arguments for '{name}' command")


def err_unknown(args: list[bytes]) -> bytes:
    """Redis 7.0's text: the name and the arguments as C strings (cut at a NUL byte),
    the name to 128 bytes, arguments added while the list is under 128 bytes."""
    shown = b""
    for arg in args[1:]:
        if len(shown) >= 128:
            break
        shown += b"'" + _show(arg)[:128 - len(shown)] + b"' "
    return _raw_error(b"ERR unknown command '" + _show(args[0])[:128]
                      + b"', with args beginning with: " + shown)


def err_protected(name: str) -> bytes:
    """Redis 7.0's refusal of a command flagged `protected` (DEBUG) while its
    enable-<name>-command setting is `no`, its default (and the only value here)."""
    return resp.error(
        f"ERR {name.upper()} command not allowed. If the enable-{name}-command option is set "
        'to "local", you can run it from a local connection, otherwise you need to set this '
        "option in the configuration file, and then restart the server.")


def err_subcommand(sub: bytes, cmd: str) -> bytes:
    return _raw_error(b"ERR unknown subcommand '" + _show(sub)[:128]
                      + b"'. Try " + cmd.upper().encode() + b" HELP.")


def _show(arg: bytes) -> bytes:
    """An argument as Redis' "%s" prints it: up to its first NUL byte, bytes as they are."""
    return arg.split(b"\0", 1)[0]


def _raw_error(text: bytes) -> bytes:
    return b"-" + text.replace(b"\r", b" ").replace(b"\n", b" ") + b"\r\n"


ERR_SYNTAX = resp.error("ERR syntax error")
ERR_NOT_INT = resp.error("ERR value is not an integer or out of range")
ERR_NOT_FLOAT = resp.error("ERR value is not a valid float")
ERR_NOAUTH = resp.error("NOAUTH Authentication required.")
ERR_WRONGTYPE = resp.error("WRONGTYPE Operation against a key holding the wrong kind of value")


def numkeys_keys(index: int) -> KeysOf:
    """`keys_of` for a command whose word `index` counts the keys that follow it
    (SINTERCARD numkeys key ...): None unless it is a positive integer that many words
    follow."""

    def keys_of(words: list[bytes]) -> list[bytes] | None:
        n = parse_int(words[index]) if index < len(words) else None
        if n is None or n <= 0 or n > len(words) - index - 1:
            return None
        return words[index + 1 : index + 1 + n]

    return keys_of


def parse_int(raw: bytes) -> int | None:
    """A Redis integer argument (signed 64-bit decimal), or None if it is not one."""
    if not raw or len(raw) > 20 or raw != raw.strip() or raw[:1] == b"+":
        return None
    if raw[:1] == b"0" and len(raw) > 1 or raw[:2] == b"-0":
        return None
    if not (raw[1:] if raw[:1] == b"-" else raw).isdigit():
        return None  # digits only: Python's int() would also take "1_0"
    n = int(raw)
    if not -(2**63) <= n < 2**63:
        return None
    return n
