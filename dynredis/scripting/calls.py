"""redis.call on the node's side: a script's command run through the ordinary command
table, as the script's client, with Redis' refusals for scripts.

The command runs exactly as if the client had sent it (its ACL user, its quorum
settings), through a stand-in for the connection that catches the reply in the
protocol the script asked for (redis.setresp) instead of writing it to the socket.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from ..commands.common import ok_or_error
from ..commands.databases import map_args
from ..commands.metadata import redis_record
from ..commands.notify import run as run_notifying
from ..commands.table import Command, lookup
from ..core.engine import Pinned
from ..resp import encode as resp
from ..server.streamed import Streamed, gather, pinned_reply

ERR_UNKNOWN = b"-ERR Unknown Redis command called from script\r\n"
ERR_ARITY = b"-ERR Wrong number of args calling Redis command from script\r\n"
ERR_NOSCRIPT = b"-ERR This Redis command is not allowed from script\r\n"
ERR_WRITE_RO = b"-ERR Write commands are not allowed from read-only scripts.\r\n"
ERR_ACL_COMMAND = b"-ERR The user executing the script can't run this command or subcommand\r\n"
ERR_ACL_KEY = (b"-ERR The user executing the script can't access at least one of the keys "
               b"mentioned in the command arguments\r\n")
ERR_ACL_CHANNEL = (b"-ERR The user executing the script can't publish to the channel "
                   b"mentioned in the command\r\n")
ERR_ACL_CHECK = b"-ERR Invalid command passed to redis.acl_check_cmd()\r\n"
ERR_LOADING = b"-LOADING dynredis is linking to its peers\r\n"


class ScriptCall:
    """Stands in for the connection while one command runs for a script (or for another
    node): the connection's attributes, except its protocol, those given in `attrs`, and
    its reply, which goes to `done`: bytes, or with `in_parts` (a script's call: its
    thread joins them) a reply made over loop turns as the list of its parts."""

    def __init__(self, conn: Any, proto: int, done: Callable[[Any], None],
                 owner: Any = None, in_parts: bool = False, **attrs: Any) -> None:
        d = self.__dict__
        d["_conn"] = conn
        d["_done"] = done
        d["_answered"] = False
        d["_in_parts"] = in_parts
        d["proto"] = proto
        d["nil"] = resp.nil(proto)
        d["tx"] = None  # a script's commands never queue in the client's MULTI
        d["gate_owner"] = owner  # the script whose key gates its commands pass
        d["may_block"] = False  # BLMPOP, BZMPOP: their non-blocking form, as in Redis
        d.update(attrs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self.__dict__:  # its own (a script's database: SELECT in a script)
            self.__dict__[name] = value
            return
        setattr(self._conn, name, value)

    def defer(self) -> ScriptCall:
        return self

    defer_blocking = defer

    def put_ok(self, key: bytes, data: bytes, expire_at: int) -> None:
        self._conn.put(key, None, data, expire_at, lambda r: self.set(ok_or_error(r)), self.w)

    def set(self, reply: bytes) -> None:
        if self._answered:
            return
        self.__dict__["_answered"] = True
        self._done(reply)

    def send_stored(self, slot: Any, key: bytes, value: Any, before: bytes, after: bytes,
                    span: tuple[int, int] | None = None) -> bool:
        """A large value a script's read left in the store (GET, GETRANGE of a long
        range) is copied from there a slice at a time over loop turns (`send_streamed`),
        as for a client, instead of read whole in one (a 100 MiB GETRANGE in a script: a
        copy out of the store and one framing it, 110 ms of CPU in one turn)."""
        if slot is not self or self._answered or not self._in_parts:
            return False
        pinned = self._conn.node.pin_value(key, value)
        return pinned is not None and self.send_pinned(slot, pinned, before, after, span)

    def send_pinned(self, slot: Any, pinned: tuple[Any, Pinned], before: bytes,
                    after: bytes, span: tuple[int, int] | None = None) -> bool:
        """`send_stored` of a value pinned already (GETDEL's, SET ... GET's), its pin
        released once copied; False (the caller still holds the pin) if not ours, or
        for a command another node handed over: its answer goes whole, copied once."""
        if not self._in_parts:
            return False
        return self.send_streamed(slot, pinned_reply(pinned, before, after, span))

    def send_streamed(self, slot: Any, reply: Streamed) -> bool:
        """A reply a client would get over loop turns (a collection's long one, a large
        value from the store) is made whole over turns too, while the script waits for
        it (its thread), instead of at once."""
        if slot is not self or self._answered:
            return False
        self.__dict__["_answered"] = True
        gather(reply, self._conn.node.coll.later, self._done, self._in_parts)
        return True


@cache
def _redis_flags(name: str) -> frozenset[str]:
    record = redis_record(name)
    if record is None:
        return frozenset()
    return frozenset(str(f) for f in record[2])


def resolve(args: list[bytes]) -> tuple[Command | None, Command | None]:
    """The command and, for a container (CONFIG, SCRIPT ...), the subcommand named."""
    cmd = lookup(args[0])
    if cmd is None or not cmd.subcommands or len(args) < 2:
        return cmd, None
    return cmd, cmd.subcommands.get(args[1].decode("utf-8", "replace").lower())


def flags_of(cmd: Command, sub: Command | None) -> frozenset[str]:
    c = sub or cmd
    return frozenset(c.flags) | _redis_flags(c.name)


def refusal(run: Any, cmd: Command | None, sub: Command | None, args: list[bytes],
            loading: bool) -> bytes | None:
    """Why a script may not run this command (Redis' order of checks), or None."""
    if cmd is None:
        return ERR_UNKNOWN
    if not cmd.arity_ok(len(args)) or (sub is not None and not sub.arity_ok(len(args))):
        return ERR_ARITY
    flags = flags_of(cmd, sub)
    if "noscript" in flags:
        return ERR_NOSCRIPT
    perms = run.conn.perms
    if perms is not None:
        denied = perms.denial(cmd, args)
        if denied is not None:
            reason = denied[0]
            return ERR_ACL_KEY if reason == "key" else \
                ERR_ACL_CHANNEL if reason == "channel" else ERR_ACL_COMMAND
    if "write" in flags:
        if run.no_writes:
            return ERR_WRITE_RO
    if loading and ("write" in flags or "readonly" in flags):
        return ERR_LOADING
    return None


def execute(run: Any, args: list[bytes], proto: int, loading: bool,
            done: Callable[[Any], None]) -> None:
    """Run `args` for the script `run`; its reply (RESP `proto`: bytes, or the list of
    the parts of one made over loop turns) goes to `done`."""
    cmd, sub = resolve(args)
    refused = refusal(run, cmd, sub, args, loading)
    if refused is not None:
        done(refused)
        return
    assert cmd is not None
    if "write" in flags_of(cmd, sub):
        run.wrote = True
    call = ScriptCall(run.conn, proto, done, run, True, db=run.db)
    try:
        reply = run_notifying(cmd, call, map_args(cmd, args, run.db, run.conn.cluster_view))
    except Exception:
        reply = resp.error(f"ERR internal error executing '{cmd.name}'")
    run.db = call.db  # SELECT in a script: its later commands' database, not the client's
    if reply is not None:
        call.set(reply)


def acl_check(run: Any, args: list[bytes]) -> bytes:
    """redis.acl_check_cmd: :1 or :0, or the error for an unknown command."""
    cmd, sub = resolve(args)
    if cmd is None or not cmd.arity_ok(len(args)):
        return ERR_ACL_CHECK
    perms = run.conn.perms
    if perms is None or perms.denial(cmd, args) is None:
        return resp.ONE
    return resp.ZERO
