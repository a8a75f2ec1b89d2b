"""Connection and server commands: PING ECHO QUIT HELLO AUTH SELECT RESET CLIENT COMMAND
TIME CONFIG FLUSHDB MEMORY USAGE (INFO: info.py; SAVE, BGSAVE, LASTSAVE: persistence.py)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

from ..core import obj as objmod
from ..core import records as rec
from ..core import shape
from ..resp import encode as resp
from ..resp.encode import Error, Simple, Verbatim
from ..server.limits import (
    MAXCLIENTS_MAX,
    QUERY_BUFFER_MIN,
    default_output_limits,
    format_output_limits,
    maxclients_refusal,
    parse_output_limits,
)
from .blocking import unblock
from .collection import error_reply, run_step, start_plan
from .collmemory import DEFAULT_SAMPLES, KEY_OVERHEAD
from .context import Client, Context
from .databases import DATABASES, ERR_DB_RANGE, parse_db, storage_key, user_key
from .glob import stringmatch
from .info import REDIS_VERSION
from .keymoves import move_plan
from .metadata import command_docs, command_info, spec_keys
from .notify import ERR_EVENTS, format_events, parse_events, stored_events
from .objects import OBJECT_THRESHOLDS
from .table import (
    ERR_NOT_INT,
    ERR_SYNTAX,
    Command,
    command,
    commands,
    dispatch,
    err_arity,
    err_subcommand,
    help_reply,
    lookup,
    lookup_full,
    parse_int,
    subcommand,
)
from .watch import unwatch

ERR_NOPASS = resp.error(
    "ERR AUTH <password> called without any password configured for the default user. "
    "Are you sure your configuration is correct?"
)
ERR_WRONGPASS = resp.error("WRONGPASS invalid username-password pair or user is disabled.")
ERR_SELECT_CLUSTER = resp.error("ERR SELECT is not allowed in cluster mode")


@command("ping", -1, ("fast", "stale"), group="connection", summary="Returns the server's liveliness response.")
def cmd_ping(c: Context, args: list[bytes]) -> bytes:
    if c.proto == 2 and c.subs.any and len(args) <= 2:
        # In RESP2 subscriber mode PING answers as a message would come: an array.
        return resp.array([resp.bulk(b"pong"), resp.bulk(args[1] if len(args) == 2 else b"")])
    if len(args) == 1:
        return resp.PONG
    if len(args) == 2:
        return resp.bulk(args[1])
    return err_arity("ping")


@command("echo", 2, ("fast", "stale"), group="connection", summary="Returns the given string.")
def cmd_echo(c: Context, args: list[bytes]) -> bytes:
    return resp.bulk(args[1])


@command("quit", -1, ("fast", "stale", "noauth"), group="connection", summary="Closes the connection.")
def cmd_quit(c: Context, args: list[bytes]) -> bytes:
    c.close_after_reply()
    return resp.OK


def _authenticate(c: Context, user: bytes, password: bytes) -> bool:
    """AUTH / HELLO AUTH: the connection becomes `user`'s if the password is one of its
    own (any for a nopass user) and the user is on (see server/acl_table.py)."""
    users = c.users
    found = users.authenticate(user.decode("utf-8", "surrogateescape"), password)
    if found is None:
        return False
    c.authed = True
    c.user = found.name
    c.perms = users.restrictions(found.name)
    return True


@command("auth", -2, ("fast", "stale", "noauth"), group="connection", summary="Authenticates the connection.")
def cmd_auth(c: Context, args: list[bytes]) -> bytes:
    if len(args) > 3:
        return resp.error("ERR syntax error")
    if len(args) == 2:
        default = c.users.get("default")
        if default is not None and default.nopass:
            return ERR_NOPASS
        user, password = b"default", args[1]
    else:
        user, password = args[1], args[2]
    if not _authenticate(c, user, password):
        return ERR_WRONGPASS
    return resp.OK


@command("hello", -1, ("fast", "stale", "noauth"), group="connection", summary="Handshakes with the server.")
def cmd_hello(c: Context, args: list[bytes]) -> bytes:
    proto = c.proto
    if len(args) >= 2:
        ver = parse_int(args[1])
        if ver is None:
            return resp.error("ERR Protocol version is not an integer or out of range")
        if ver not in (2, 3):
            return resp.error("NOPROTO unsupported protocol version")
        proto = ver
    i = 2
    name = None
    while i < len(args):
        opt = args[i].upper()
        if opt == b"AUTH" and i + 2 < len(args):
            if not _authenticate(c, args[i + 1], args[i + 2]):
                return ERR_WRONGPASS
            i += 3
        elif opt == b"SETNAME" and i + 1 < len(args):
            name = args[i + 1]
            i += 2
        else:
            return resp.error(f"ERR Syntax error in HELLO option '{args[i].decode('utf-8', 'replace')}'")
    if not c.authed:
        # (Redis 7.0.15's words)
        return resp.error("NOAUTH HELLO must be called with the client already authenticated, "
                          "otherwise the HELLO AUTH <user> <pass> option can be used to "
                          "authenticate the client and select the RESP protocol version at the same time")
    if name is not None:
        c.name = name
    c.proto = proto
    return resp.encode({
        "server": "redis",
        "version": REDIS_VERSION,
        "proto": proto,
        "id": c.id,
        # the port's persona: a standalone Redis on the main port, a cluster node on the
        # cluster port (tools decide by it, as by INFO's cluster_enabled)
        "mode": "cluster" if c.cluster_view else "standalone",
        "role": "master",
        "modules": [],
    }, proto)


@command("select", 2, ("fast", "loading", "stale"), group="connection", summary="Changes the selected database.")
def cmd_select(c: Context, args: list[bytes]) -> bytes:
    """Databases 0..15 on the main port (a standalone Redis); the cluster port is a
    Redis Cluster node's: database 0 only."""
    db = parse_db(args[1])
    if isinstance(db, str):
        if c.cluster_view and db == ERR_DB_RANGE:
            return ERR_SELECT_CLUSTER
        return resp.error(db)
    if c.cluster_view and db != 0:
        return ERR_SELECT_CLUSTER
    c.db = db
    return resp.OK


# --- CLIENT -------------------------------------------------------------------------


def _client_flags(c: Client) -> str:
    """Redis' flags letters, those that apply here, in Redis' order ("N": none)."""
    flags = ("P" if c.subs.any else "") + ("x" if c.tx is not None else "") \
        + ("b" if c.blocked is not None else "") + ("e" if c.no_evict else "")
    return flags or "N"


def _client_info(c: Client) -> str:
    name = (c.name or b"").decode("utf-8", "replace")
    qbuf, argv, omem = c.query_bytes(), c.argv_bytes(), c.output_bytes()
    multi = len(c.tx) if c.tx is not None else -1
    return (f"id={c.id} addr={c.peer} laddr={c.local} fd=-1 name={name} age={c.age()} "
            f"idle={c.idle()} flags={_client_flags(c)} db={c.db} sub={len(c.subs.channels)} "
            f"psub={len(c.subs.patterns)} ssub={len(c.subs.shard)} multi={multi} qbuf={qbuf} "
            f"qbuf-free=0 argv-mem={argv} multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem={omem} "
            f"tot-mem={qbuf + argv + omem} events=r cmd={c.last_cmd} "
            f"user={c.user} redir=-1 resp={c.proto} lib-name={c.lib_name} lib-ver={c.lib_ver}")


@command("client", -2, ("stale",), group="connection", summary="A container for client connection commands.")
def cmd_client(c: Context, args: list[bytes]) -> bytes:
    sub = args[1].upper()
    n = len(args)
    if sub == b"SETNAME" and n == 3:
        name = args[2]
        if any(ch <= 32 or ch > 126 for ch in name):
            return resp.error("ERR Client names cannot contain spaces, newlines or special characters.")
        c.name = name or None
        return resp.OK
    if sub == b"GETNAME" and n == 2:
        return resp.bulk(c.name) if c.name else c.nil
    if sub == b"ID" and n == 2:
        return resp.integer(c.id)
    if sub == b"SETINFO" and n == 4:
        attr = args[2].upper()
        value = args[3].decode("utf-8", "replace")
        if attr == b"LIB-NAME":
            c.lib_name = value
        elif attr == b"LIB-VER":
            c.lib_ver = value
        else:
            return resp.error(f"ERR Unrecognized option '{args[2].decode('utf-8', 'replace')}'")
        return resp.OK
    if sub == b"KILL" and n >= 3:
        return _client_kill(c, args)
    if sub == b"REPLY" and n == 3:
        mode = args[2].upper()
        if mode not in (b"ON", b"OFF", b"SKIP"):
            return ERR_SYNTAX
        c.reply_mode = mode.decode().lower()
        c.silent = mode != b"ON"  # OFF and SKIP are not answered
        return resp.OK
    if sub == b"PAUSE" and n in (3, 4):
        ms = parse_int(args[2])
        if ms is None or ms < 0:
            return resp.error("ERR timeout is not an integer or out of range")
        writes_only = False
        if n == 4:
            how = args[3].upper()
            if how not in (b"WRITE", b"ALL"):
                return resp.error("ERR CLIENT PAUSE mode must be WRITE or ALL")
            writes_only = how == b"WRITE"
        c.pause_clients(c.node.now + ms, writes_only)
        return resp.OK
    if sub == b"UNPAUSE" and n == 2:
        c.unpause_clients()
        return resp.OK
    if sub == b"INFO" and n == 2:
        return resp.encode(Verbatim(_client_info(c) + "\n"), c.proto)
    if sub == b"LIST":
        lines = "".join(_client_info(x) + "\n" for x in c.clients.values())
        return resp.encode(Verbatim(lines), c.proto)
    if sub in (b"NO-EVICT", b"NO-TOUCH") and n == 3:
        mode = args[2].upper()
        if mode not in (b"ON", b"OFF"):
            return ERR_SYNTAX
        if sub == b"NO-EVICT":
            c.no_evict = mode == b"ON"
        return resp.OK
    if sub == b"UNBLOCK" and 3 <= n <= 4:
        return _client_unblock(c, args)
    if sub == b"UNBLOCK" and n > 4:
        return resp.error("ERR unknown subcommand or wrong number of arguments for "
                          "'unblock'. Try CLIENT HELP.")
    if sub == b"TRACKING" and n >= 3:
        return _client_tracking(c, args)
    if sub == b"TRACKINGINFO" and n == 2:
        return resp.encode({"flags": {"off"}, "redirect": -1, "prefixes": []}, c.proto)
    if sub == b"GETREDIR" and n == 2:
        return resp.integer(-1)  # tracking is never on
    if sub == b"CACHING" and n == 3:
        return resp.error("ERR CLIENT CACHING can be called only when the client is in "
                          "tracking mode with OPTIN or OPTOUT mode enabled")
    if sub == b"HELP":
        return resp.encode([Simple(x) for x in (
            "CLIENT <subcommand> [<arg> ...]. Subcommands are:",
            "ID", "GETNAME", "SETNAME <name>", "SETINFO <option> <value>", "INFO", "LIST",
            "REPLY (ON|OFF|SKIP)", "PAUSE <timeout> [WRITE|ALL]", "UNPAUSE",
            "KILL <ip:port>", "KILL <option> <value> [<option> <value> [...]] (ID, TYPE, "
            "USER, ADDR, LADDR, SKIPME, MAXAGE)",
            "NO-EVICT (ON|OFF)", "NO-TOUCH (ON|OFF)",
            "TRACKING OFF (client-side caching, TRACKING ON, is not supported)",
            "TRACKINGINFO", "GETREDIR", "UNBLOCK <clientid> [TIMEOUT|ERROR]")], c.proto)
    if sub.decode("utf-8", "replace").lower() in CLIENT_SUBCOMMANDS:
        return resp.error(f"ERR wrong number of arguments for 'client|{sub.decode().lower()}' command")
    return err_subcommand(args[1], "client")


def _client_unblock(c: Context, args: list[bytes]) -> bytes:
    """CLIENT UNBLOCK id [TIMEOUT|ERROR]: end a blocking pop's wait (commands/blocking.py);
    1 if the client was waiting in one, else 0 (WAIT is not unblocked this way)."""
    target_id = parse_int(args[2])
    if target_id is None:
        return ERR_NOT_INT
    error = False
    if len(args) == 4:
        reason = args[3].upper()
        if reason not in (b"TIMEOUT", b"ERROR"):
            return resp.error("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR")
        error = reason == b"ERROR"
    return resp.ONE if unblock(c.node, c.clients.get(target_id), error) else resp.ZERO
KILL_TYPES = (b"NORMAL", b"MASTER", b"SLAVE", b"REPLICA", b"PUBSUB")


def _client_kill(c: Context, args: list[bytes]) -> bytes:
    """CLIENT KILL addr:port (the old form: +OK or no such client), or CLIENT KILL with
    filters ID, TYPE, USER, ADDR, LADDR, SKIPME, MAXAGE (the number killed). The caller
    itself, if it matches with SKIPME no, is closed after this reply."""
    if len(args) == 3:
        addr = args[2].decode("utf-8", "replace")
        found = [x for x in c.clients.values() if x.peer == addr]
        if not found:
            return resp.error("ERR No such client")
        _kill(c, found)
        return resp.OK
    if len(args) % 2:
        return ERR_SYNTAX
    tests: list[tuple[str, Any]] = []
    skipme = True
    for i in range(2, len(args), 2):
        opt, raw = args[i].upper(), args[i + 1]
        text = raw.decode("utf-8", "replace")
        if opt == b"ID":
            cid = parse_int(raw)
            if cid is None or cid <= 0:
                return resp.error("ERR client-id should be greater than 0")
            tests.append(("id", cid))
        elif opt == b"TYPE":
            if raw.upper() not in KILL_TYPES:
                return resp.error(f"ERR Unknown client type '{text}'")
            tests.append(("normal", raw.upper() == b"NORMAL"))  # every client is normal
        elif opt == b"USER":
            if c.users.get(text) is None:
                return resp.error(f"ERR No such user '{text}'")
            tests.append(("user", text))
        elif opt == b"ADDR":
            tests.append(("peer", text))
        elif opt == b"LADDR":
            tests.append(("local", text))
        elif opt == b"SKIPME":
            if raw.lower() not in (b"yes", b"no"):
                return ERR_SYNTAX
            skipme = raw.lower() == b"yes"
        elif opt == b"MAXAGE":
            age = parse_int(raw)
            if age is None:
                return ERR_NOT_INT
            tests.append(("age", age))
        else:
            return ERR_SYNTAX
    found = [x for x in c.clients.values()
             if all(_kill_match(x, t) for t in tests) and not (skipme and x.id == c.id)]
    _kill(c, found)
    return resp.integer(len(found))


def _kill_match(x: Client, test: tuple[str, Any]) -> bool:
    what, want = test
    if what == "normal":
        return bool(want)
    if what == "age":
        return x.age() >= want
    return bool(getattr(x, what) == want)


def _kill(c: Context, found: list[Client]) -> None:
    for x in found:
        if x.id == c.id:
            c.close_after_reply()
        else:
            x.kill()


ERR_TRACKING = resp.error(
    "ERR CLIENT TRACKING ON is not supported: dynredis has no client-side caching "
    "(invalidation messages); use CLIENT TRACKING OFF")


def _client_tracking(c: Context, args: list[bytes]) -> bytes:
    """CLIENT TRACKING ON|OFF [REDIRECT id] [PREFIX p ...] [BCAST] [OPTIN] [OPTOUT] [NOLOOP]:
    options are checked as Redis checks them; OFF is honoured (tracking is never on),
    ON is refused with a clear error."""
    redirect = 0
    i = 3
    while i < len(args):
        opt = args[i].upper()
        more = i + 1 < len(args)
        if opt == b"REDIRECT" and more:
            i += 1
            if redirect != 0:
                return resp.error("ERR A client can only redirect to a single other client")
            rid = parse_int(args[i])
            if rid is None:
                return ERR_NOT_INT
            redirect = rid
            if rid not in c.clients:
                return resp.error("ERR The client ID you want redirect to does not exist")
        elif opt == b"PREFIX" and more:
            i += 1
        elif opt not in (b"BCAST", b"OPTIN", b"OPTOUT", b"NOLOOP"):
            return ERR_SYNTAX
        i += 1
    mode = args[2].upper()
    if mode == b"OFF":
        return resp.OK
    if mode == b"ON":
        return ERR_TRACKING
    return ERR_SYNTAX


# Metadata for COMMAND INFO (CLIENT parses its own subcommands): name -> arity.
CLIENT_SUBCOMMANDS = {
    "id": 2, "kill": -3, "reply": 3, "pause": -3, "unpause": 2, "getname": 2, "setname": 3, "setinfo": 4, "info": 2, "list": -2,
    "no-evict": 3, "no-touch": 3, "tracking": -3, "trackinginfo": 2, "getredir": 2,
    "caching": 3, "help": 2, "unblock": -3,
}
for _name, _arity in CLIENT_SUBCOMMANDS.items():
    subcommand("client", _name, _arity, ("noscript", "loading", "stale"))(cmd_client)


# --- SHUTDOWN -----------------------------------------------------------------------

_SHUTDOWN_FLAGS = frozenset((b"NOSAVE", b"SAVE", b"NOW", b"FORCE", b"ABORT"))
ERR_NO_SHUTDOWN = resp.error("ERR No shutdown in progress.")
ERR_CANNOT_STOP = resp.error("ERR Errors trying to SHUTDOWN. Check logs.")


@command("shutdown", -1, ("admin", "noscript", "loading", "stale", "no_multi", "allow_busy"),
         group="server", since="1.0.0",
         summary="Synchronously saves the database(s) to disk and shuts down the Redis server.")
def cmd_shutdown(c: Context, args: list[bytes]) -> bytes | None:
    """Stop this node, as `dynredis stop` (SIGTERM) does: clients' connections close
    with no reply, as Redis closes them; its store is synced first whatever the option
    (NOSAVE too: the writes it acknowledged stay on its disk), and its peers count it
    down and keep hints for it until it is started again (`make cluster`). A stop is
    at once, so there is never one in progress to ABORT (Redis' reply to that)."""
    flags = {a.upper() for a in args[1:]}
    if not flags <= _SHUTDOWN_FLAGS or {b"NOSAVE", b"SAVE"} <= flags or (
            b"ABORT" in flags and len(flags) > 1):
        return ERR_SYNTAX
    if b"ABORT" in flags:
        return ERR_NO_SHUTDOWN
    if not c.shutdown_node():
        return ERR_CANNOT_STOP
    c.close_after_reply()
    return None


# --- COMMAND ------------------------------------------------------------------------


@command("command", -1, ("loading", "stale"), group="server", summary="Returns detailed information about all commands.")
def cmd_command(c: Context, args: list[bytes]) -> bytes | None:
    if len(args) == 1:
        return resp.encode([command_info(x) for x in commands()], c.proto)
    return dispatch("command", c, args)


def _command_sub(name: str, arity: int) -> Any:
    return subcommand("command", name, arity, ("loading", "stale"))


@_command_sub("count", 2)
def cmd_command_count(c: Context, args: list[bytes]) -> bytes:
    return resp.integer(len(commands()))


@_command_sub("info", -2)
def cmd_command_info(c: Context, args: list[bytes]) -> bytes:
    wanted = args[2:]
    if not wanted:
        return resp.encode([command_info(x) for x in commands()], c.proto)
    return resp.encode([command_info(x) if (x := lookup_full(n)) else None for n in wanted],
                       c.proto)


@_command_sub("docs", -2)
def cmd_command_docs(c: Context, args: list[bytes]) -> bytes:
    chosen = [lookup_full(n) for n in args[2:]] if len(args) > 2 else commands()
    return resp.encode({x.name: command_docs(x) for x in chosen if x is not None}, c.proto)


def _with_subcommands() -> list[Command]:
    """Every command and every subcommand (`config|get`), as COMMAND LIST lists them."""
    return [y for x in commands() for y in (x, *x.subcommands.values())]


@_command_sub("list", -2)
def cmd_command_list(c: Context, args: list[bytes]) -> bytes:
    """COMMAND LIST [FILTERBY MODULE name | ACLCAT category | PATTERN glob], as Redis:
    subcommands listed too; no modules here; categories and patterns without case."""
    listed = _with_subcommands()
    if len(args) == 5 and args[2].upper() == b"FILTERBY":
        how, arg = args[3].upper(), args[4]
        if how == b"MODULE":
            listed = []
        elif how == b"ACLCAT":
            want = b"@" + arg.lower()
            listed = [x for x in listed
                      if want in (str(a).encode() for a in command_info(x)[6])]
        elif how == b"PATTERN":
            listed = [x for x in listed if stringmatch(arg, x.name.encode(), True)]
        else:
            return ERR_SYNTAX
    elif len(args) != 2:
        return ERR_SYNTAX
    return resp.encode([x.name for x in listed], c.proto)


@_command_sub("help", 2)
def cmd_command_help(c: Context, args: list[bytes]) -> bytes:
    """Redis 7.0's text, without GETKEYSANDFLAGS (not served here)."""
    return help_reply(c, "command", [
        "(no subcommand)",
        "    Return details about all Redis commands.",
        "COUNT",
        "    Return the total number of commands in this Redis server.",
        "LIST",
        "    Return a list of all commands in this Redis server.",
        "INFO [<command-name> ...]",
        "    Return details about multiple Redis commands.",
        "    If no command names are given, documentation details for all",
        "    commands are returned.",
        "DOCS [<command-name> ...]",
        "    Return documentation details about multiple Redis commands.",
        "    If no command names are given, documentation details for all",
        "    commands are returned.",
        "GETKEYS <full-command>",
        "    Return the keys from a full Redis command.",
        "HELP",
        "    Prints this help."])


@_command_sub("getkeys", -4)
def cmd_command_getkeys(c: Context, args: list[bytes]) -> bytes:
    target = lookup(args[2])
    if target is None:
        return resp.error("ERR Invalid command specified")
    words = args[2:]
    if target.subcommands and len(words) >= 2:
        target = target.subcommands.get(words[1].decode("utf-8", "replace").lower())
        if target is None:
            return resp.error("ERR Invalid command specified")
    if not target.arity_ok(len(words)):
        return resp.error("ERR Invalid number of arguments specified for command")
    if target.keys_of is not None or "movablekeys" in target.flags:
        keys = (target.keys_of(words) if target.keys_of is not None
                else spec_keys(target.name, words))
        if keys is None:
            return resp.error("ERR Invalid arguments specified for command")
        return resp.encode(keys, c.proto)
    if not target.first_key:
        return resp.error("ERR The command has no key arguments")
    last = target.last_key if target.last_key >= 0 else len(words) + target.last_key
    return resp.encode(list(words[target.first_key:last + 1:target.step]), c.proto)


# --- RESET --------------------------------------------------------------------------


@command("reset", 1, ("noauth", "loading", "stale", "fast"), group="connection",
         summary="Resets the connection.", since="6.2.0")
def cmd_reset(c: Context, args: list[bytes]) -> bytes:
    """As Redis' RESET: back to RESP2, no name, database 0, unauthenticated if a
    password is set (tracking is never on, there is no MULTI to leave); its
    subscriptions end."""
    c.pubsub.subs.drop(c)
    c.proto = 2
    c.name = None
    c.db = 0
    c.tx = None
    c.tx_failed = False
    unwatch(c)
    users = c.users
    c.authed = users.default_open()
    c.user = "default"
    c.perms = users.restrictions("default")
    c.r = None
    c.w = None
    return RESET


RESET = resp.simple("RESET")


# --- TIME ---------------------------------------------------------------------


@command("time", 1, ("loading", "stale", "fast"), group="server",
         summary="Returns the server time.", since="2.6.0")
def cmd_time(c: Context, args: list[bytes]) -> bytes:
    sec, usec = divmod(time.time_ns() // 1000, 1_000_000)
    return resp.array([resp.bulk(b"%d" % sec), resp.bulk(b"%d" % usec)])


# --- FLUSHDB ------------------------------------------------------------------------


FLUSH_CHUNK = 256  # keys FLUSHDB deletes at a time


class _Then:
    """A reply slot stand-in: hands the reply to a function."""

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[[bytes], None]) -> None:
        self.fn = fn

    def set(self, reply: bytes) -> None:
        self.fn(reply)


@command("flushdb", -1, ("write",), group="server",
         summary="Removes all keys of the selected database (each deleted as DEL does).")
def cmd_flushdb(c: Context, args: list[bytes]) -> bytes | None:
    """The keys of the connection's database are listed by a keyspace walk (the whole
    cluster on the main port, the node's own partitions on the cluster port), then
    deleted as DEL deletes them, FLUSH_CHUNK at a time: each removes what it read, so a
    write concurrent with the flush may survive it, and a replica that is down gets the
    deletions by hinted handoff (FLUSHALL instead wipes every reachable node at once)."""
    from .keys import _delete_keys

    if len(args) > 2 or (len(args) == 2 and args[1].upper() not in (b"ASYNC", b"SYNC")):
        return ERR_SYNTAX
    slot = c.defer()
    db = c.db
    listed: list[bytes] = []

    def chunk(i: int) -> None:
        # Each chunk's keys are turned into stored keys as it starts: all of them at
        # once held the loop 222 ms for a million keys.
        part = [storage_key(db, k) for k in dict.fromkeys(listed[i:i + FLUSH_CHUNK])]
        if not part:
            slot.set(resp.OK)
            return

        def deleted(reply: bytes) -> None:
            if reply[:1] == b"-":
                slot.set(reply)
            else:
                chunk(i + FLUSH_CHUNK)

        _delete_keys(c, part, _Then(deleted))

    def found(result: tuple) -> None:
        e, keys = result
        if e is not None:
            slot.set(resp.error(e))
            return
        listed.extend(keys)
        chunk(0)

    c.keyscan.keys(None, c.cluster_view, found, db)
    return None


# --- MOVE ---------------------------------------------------------------------------


@command("move", 3, ("write", "fast"), 1, 1, 1, "generic",
         summary="Moves a key to another database (not atomic: as RENAMENX).")
def cmd_move(c: Context, args: list[bytes]) -> bytes | None:
    """Checked as Redis checks it (the port, the index, the same database), then
    served as keymoves.move_plan: the key (as stored) to the other database's key of
    the same name."""
    if c.cluster_view:
        return resp.error("ERR MOVE is not allowed in cluster mode")
    db = parse_db(args[2])
    if isinstance(db, str):
        return resp.error(db)
    if db == c.db:
        return resp.error("ERR source and destination objects are the same")
    src = args[1]  # as stored (commands/databases.py)
    dst = storage_key(db, user_key(src)[1])
    return start_plan(c, move_plan(src, dst), [src, dst])


# --- SWAPDB -------------------------------------------------------------------------


@command("swapdb", 3, ("write", "fast"), group="server", since="4.0.0",
         summary="Refused: databases are key namespaces spread over the cluster, which "
                 "cannot trade places at one instant.")
def cmd_swapdb(c: Context, args: list[bytes]) -> bytes:
    if c.cluster_view:
        return resp.error("ERR SWAPDB is not allowed in cluster mode")
    for raw, which in ((args[1], "first"), (args[2], "second")):
        db = parse_db(raw)
        if isinstance(db, str) and db != ERR_DB_RANGE:
            return resp.error(f"ERR invalid {which} DB index")
    for raw in args[1:]:
        if isinstance(parse_db(raw), str):
            return resp.error(ERR_DB_RANGE)
    return ERR_SWAPDB


ERR_SWAPDB = resp.error(
    "ERR SWAPDB is not supported: dynredis databases are key namespaces spread over the "
    "cluster's nodes, which cannot trade places at one instant")


# --- CONFIG -------------------------------------------------------------------------


ULLONG_MAX = 2**64 - 1
_MEM_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1024, "m": 1000**2, "mb": 1024**2,
              "g": 1000**3, "gb": 1024**3}


def memtoull(raw: str) -> int | None:
    """Redis' memory value ("0", "512mb", "1gb" ...), or None where Redis says
    'argument must be a memory value'."""
    if raw.startswith("-"):
        return None
    i = 0
    while i < len(raw) and "0" <= raw[i] <= "9":
        i += 1
    mul = _MEM_UNITS.get(raw[i:].lower())
    if mul is None or i >= 128:
        return None
    return (min(int(raw[:i] or "0"), ULLONG_MAX) * mul) & ULLONG_MAX


def _strtoll_full(token: str) -> int | None:
    """strtoll(token) when it consumes the whole token (leading blanks and a sign allowed,
    the empty string reading as 0), else None."""
    body = token.lstrip(" \t\n\v\f\r")
    digits = body[1:] if body[:1] in ("+", "-") else body
    if not digits:
        return 0 if not body else None
    if not digits.isascii() or not digits.isdigit():
        return None
    return int(body)


@dataclasses.dataclass(frozen=True)
class Setting:
    """A CONFIG parameter: its current value, and a parser that normalises a new value
    (returning (normal form, None) or (None, Redis' reason for refusing it)).

    CONFIG SET succeeds only when the new value means what the node already runs with
    (every other value is a setting dynredis cannot honour), except for the settings
    with an `apply`, which takes the connection and the normal form and returns None, or
    the reason it cannot be applied."""

    name: str
    value: Callable[[Context], str]
    parse: Callable[[str], tuple[object, str | None]]
    immutable: bool = False  # immutable in Redis too: Redis' own error
    apply: Callable[[Context, Any], str | None] | None = None


def _parse_memory(low: int, high: int) -> Callable[[str], tuple[object, str | None]]:
    def parse(raw: str) -> tuple[object, str | None]:
        n = memtoull(raw)
        if n is None:
            return None, "argument must be a memory value"
        if not low <= n <= high:
            return None, f"argument must be between {low} and {high} inclusive"
        return n, None

    return parse


def _parse_int(low: int, high: int) -> Callable[[str], tuple[object, str | None]]:
    def parse(raw: str) -> tuple[object, str | None]:
        n = parse_int(raw.encode())
        if n is None:
            return None, "argument couldn't be parsed into an integer"
        if not low <= n <= high:
            return None, f"argument must be between {low} and {high} inclusive"
        return n, None

    return parse


def _parse_bool(raw: str) -> tuple[object, str | None]:
    low = raw.lower()
    if low not in ("yes", "no"):
        return None, "argument must be 'yes' or 'no'"
    return low, None


POLICIES = ("volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl", "allkeys-lru",
            "allkeys-lfu", "allkeys-random", "noeviction")


def _parse_policy(raw: str) -> tuple[object, str | None]:
    low = raw.lower()
    if low not in POLICIES:
        return None, "argument(s) must be one of the following: " + ", ".join(POLICIES)
    return low, None


def _parse_save(raw: str) -> tuple[object, str | None]:
    words = raw.split(" ")
    if words == [""]:
        return (), None
    values = [_strtoll_full(w) for w in words]
    if len(words) % 2 or any(
            v is None or v < (1 if k % 2 == 0 else 0) for k, v in enumerate(values)):
        return None, "Invalid save parameters"
    return tuple(values), None


def _fixed(raw: str) -> tuple[object, str | None]:
    return raw, None


# --- the client limits (server/limits.py), which CONFIG SET changes ----------------------


def _set_maxclients(c: Context, n: int) -> str | None:
    limits = c.limits
    if n > limits.maxclients:
        refusal = maxclients_refusal(n)
        if refusal is not None:
            return refusal
    limits.maxclients = n
    return None


def _set_query_buffer(c: Context, n: int) -> str | None:
    c.limits.query_buffer = n
    return None


def _parse_output_limits(raw: str) -> tuple[object, str | None]:
    # Checked against the defaults (all classes present); applied over the current ones.
    new, reason = parse_output_limits(raw, default_output_limits(), memtoull)
    return (raw, None) if reason is None else (None, reason)


def _set_output_limits(c: Context, raw: str) -> str | None:
    limits = c.limits
    new, reason = parse_output_limits(raw, limits.output, memtoull)
    if new is None:
        return reason
    limits.output = new
    return None


def _parse_maxmemory_clients(raw: str) -> tuple[object, str | None]:
    if raw.endswith("%"):
        # Redis takes a percentage of maxmemory; dynredis has no maxmemory to take it of.
        return None, "a percentage of maxmemory is not supported (maxmemory is 0 here)"
    n = memtoull(raw)
    if n is None:
        return None, "argument must be a memory or percent value"
    if n > 2**63 - 1:
        return None, f"argument must be between 0 and {2**63 - 1} inclusive"
    return n, None


def _set_object_cache(c: Context, n: int) -> str | None:
    c.node.local.cache.resize(n, c.node.graveyard.bury)
    return None


def _set_maxmemory_clients(c: Context, n: int) -> str | None:
    c.limits.maxmemory_clients = n
    if n:
        c.evict_clients()
    return None


def _parse_events(raw: str) -> tuple[object, str | None]:
    flags = parse_events(raw)
    if flags is None:
        return None, ERR_EVENTS
    return stored_events(flags), None


def _set_events(c: Context, text: str) -> str | None:
    c.pubsub.set_events(text)
    return None


def _set_busy_ms(c: Any, n: int) -> str | None:
    c.scripts.busy_ms = n
    return None


def _set_calls(attr: str) -> Callable[[Any, Any], str | None]:
    def apply(c: Any, value: Any) -> str | None:
        setattr(c.callstats, attr, value)
        return None

    return apply


def _parse_percentiles(raw: str) -> tuple[object, str | None]:
    try:
        values = [float(w) for w in raw.split()]
    except ValueError:
        return None, "latency-tracking-info-percentiles should be a list of numbers"
    if any(not 0 <= v <= 100 for v in values):
        return None, "latency-tracking-info-percentiles should be between 0 and 100"
    return values, None


def _show_percentiles(c: Any) -> str:
    from .callstats import fmt_percentile

    return " ".join(fmt_percentile(p) for p in c.callstats.percentiles)


CONFIG: dict[str, Setting] = {s.name: s for s in (
    Setting("maxmemory", lambda c: "0", _parse_memory(0, ULLONG_MAX)),
    Setting("maxmemory-policy", lambda c: "noeviction", _parse_policy),
    Setting("save", lambda c: "", _parse_save),
    Setting("appendonly", lambda c: "no", _parse_bool),
    # A failed sync to disk stops no writes here: the key's other replicas hold them
    # (compat/DIFFERENCES.md; the sync is retried, storage/syncretry.py).
    Setting("stop-writes-on-bgsave-error", lambda c: "no", _parse_bool),
    Setting("proto-max-bulk-len", lambda c: "536870912", _parse_memory(1024 * 1024, 2**63 - 1)),
    Setting("databases", lambda c: str(DATABASES), _fixed, immutable=True),
    # The port's persona: the main port is a standalone Redis (SELECT works there), the
    # cluster port a Redis Cluster node (README "Cluster-aware clients").
    Setting("cluster-enabled", lambda c: "yes" if c.cluster_view else "no", _fixed,
            immutable=True),
    Setting("port", lambda c: str(c.figures().port), _parse_int(0, 65535)),
    Setting("maxclients", lambda c: str(c.limits.maxclients),
            _parse_int(1, MAXCLIENTS_MAX), apply=_set_maxclients),
    Setting("client-query-buffer-limit", lambda c: str(c.limits.query_buffer),
            _parse_memory(QUERY_BUFFER_MIN, 2**63 - 1), apply=_set_query_buffer),
    Setting("client-output-buffer-limit",
            lambda c: format_output_limits(c.limits.output), _parse_output_limits,
            apply=_set_output_limits),
    Setting("maxmemory-clients", lambda c: str(c.limits.maxmemory_clients),
            _parse_maxmemory_clients, apply=_set_maxmemory_clients),
    Setting("object-cache-max-memory", lambda c: str(c.node.local.cache.max_bytes),
            _parse_memory(0, 2**63 - 1), apply=_set_object_cache),
    # Keyspace notifications, one setting for the cluster (commands/notify.py).
    Setting("notify-keyspace-events",
            lambda c: format_events(parse_events(c.pubsub.events) or 0), _parse_events,
            apply=_set_events),
    # How long a script may run before other clients get BUSY (README "Lua scripts").
    Setting("busy-reply-threshold", lambda c: str(c.scripts.busy_ms),
            _parse_int(0, 2**63 - 1), apply=_set_busy_ms),
    Setting("lua-time-limit", lambda c: str(c.scripts.busy_ms),
            _parse_int(0, 2**63 - 1), apply=_set_busy_ms),
    # The slow log, the latency monitor and latencystats (commands/callstats.py).
    Setting("slowlog-log-slower-than", lambda c: str(c.callstats.slower_than_us),
            _parse_int(-1, 2**63 - 1), apply=_set_calls("slower_than_us")),
    Setting("slowlog-max-len", lambda c: str(c.callstats.slowlog_max),
            _parse_int(0, 2**63 - 1), apply=_set_calls("slowlog_max")),
    Setting("latency-monitor-threshold", lambda c: str(c.callstats.latency_threshold_ms),
            _parse_int(0, 2**63 - 1), apply=_set_calls("latency_threshold_ms")),
    Setting("latency-tracking", lambda c: "yes" if c.callstats.tracking else "no",
            lambda raw: (lambda v: (v[0] == "yes" if v[1] is None else None, v[1]))(
                _parse_bool(raw)), apply=_set_calls("tracking")),
    Setting("latency-tracking-info-percentiles", _show_percentiles, _parse_percentiles,
            apply=_set_calls("percentiles")),
    Setting("io-threads", lambda c: "1", _fixed, immutable=True),
    # DEBUG is refused (commands/diagnostics.py), as with Redis 7.0's default.
    Setting("enable-debug-command", lambda c: "no", _fixed, immutable=True),
    # MODULE LOAD is refused too (commands/modules.py).
    Setting("enable-module-command", lambda c: "no", _fixed, immutable=True),
    # The thresholds OBJECT ENCODING answers by (commands/objects.py): Redis' defaults.
    *(Setting(name, (lambda v: lambda c: v)(value), _fixed) for name, value in
      OBJECT_THRESHOLDS.items()),
)}


@command("config", -2, (), group="server",
         summary="A container for server configuration commands.", since="2.0.0")
def cmd_config(c: Context, args: list[bytes]) -> bytes | None:
    return dispatch("config", c, args)


@subcommand("config", "get", -3, ("admin", "noscript", "loading", "stale"),
            summary="Returns the effective values of configuration parameters.")
def cmd_config_get(c: Context, args: list[bytes]) -> bytes:
    found: dict[str, Setting] = {}
    for raw in args[2:]:
        pattern = raw.decode("utf-8", "replace")
        if not any(ch in pattern for ch in "[*?"):
            # An exact name answers under the spelling it was asked with, as Redis.
            setting = CONFIG.get(pattern.lower())
            if setting is not None and not any(k.lower() == pattern.lower() for k in found):
                found[pattern] = setting
            continue
        for name, setting in CONFIG.items():
            if name not in found and stringmatch(raw, name.encode(), nocase=True):
                found[name] = setting
    return resp.encode({name: setting.value(c) for name, setting in found.items()}, c.proto)


def _config_error(name: str, reason: str) -> bytes:
    return resp.error(f"ERR CONFIG SET failed (possibly related to argument '{name}') - {reason}")


def _unknown_option(name: str) -> bytes:
    return resp.error(f"ERR Unknown option or number of arguments for CONFIG SET - '{name}'")


@subcommand("config", "set", -4, ("admin", "noscript", "loading", "stale"),
            summary="Sets configuration parameters (only to values the node runs with).")
def cmd_config_set(c: Context, args: list[bytes]) -> bytes:
    if len(args) % 2:
        return ERR_SYNTAX
    pairs = [(args[i].decode("utf-8", "replace"), args[i + 1].decode("utf-8", "replace"))
             for i in range(2, len(args), 2)]
    # First every name (unknown, immutable, repeated: the first problem answers), then
    # every value (Redis' own validation), then whether the node can honour it.
    seen: set[str] = set()
    for name, _ in pairs:
        setting = CONFIG.get(name.lower())
        if setting is None:
            return _unknown_option(name)
        if setting.immutable:
            return _config_error(name, "can't set immutable config")
        if setting.name in seen:
            return _config_error(name, "duplicate parameter")
        seen.add(setting.name)
    wanted = []
    for name, value in pairs:
        normal, reason = CONFIG[name.lower()].parse(value)
        if reason is not None:
            return _config_error(name, reason)
        wanted.append(normal)
    for (name, _), normal in zip(pairs, wanted, strict=True):
        setting = CONFIG[name.lower()]
        if setting.apply is None and normal != setting.parse(setting.value(c))[0]:
            # A value Redis would take but this node cannot honour (a setting fixed for
            # the node's life): refused as Redis refuses what it does not know.
            return _unknown_option(name)
    # Applied in order; if one cannot be, those before it are restored (as Redis does).
    done: list[tuple[Setting, object]] = []
    for (name, _), normal in zip(pairs, wanted, strict=True):
        setting = CONFIG[name.lower()]
        if setting.apply is None:
            continue
        before = setting.parse(setting.value(c))[0]
        reason = setting.apply(c, normal)
        if reason is not None:
            for earlier, previous in reversed(done):
                assert earlier.apply is not None
                earlier.apply(c, previous)
            return _config_error(name, reason)
        done.append((setting, before))
    return resp.OK


@subcommand("config", "resetstat", 2, ("admin", "noscript", "loading", "stale"),
            summary="Resets the server's statistics.")
def cmd_config_resetstat(c: Context, args: list[bytes]) -> bytes:
    c.reset_stats()
    return resp.OK


@subcommand("config", "rewrite", 2, ("admin", "noscript", "loading", "stale"),
            summary="Persists the effective configuration to file.")
def cmd_config_rewrite(c: Context, args: list[bytes]) -> bytes:
    return resp.error("ERR The server is running without a config file")


@subcommand("config", "help", 2, ("loading", "stale"), summary="Returns helpful text.")
def cmd_config_help(c: Context, args: list[bytes]) -> bytes:
    return help_reply(c, "config", [
        "GET <pattern>",
        "    Return parameters matching the glob-like <pattern> and their values.",
        "SET <directive> <value>",
        "    Set the configuration <directive> to <value> (only to the value in effect).",
        "RESETSTAT",
        "    Reset statistics reported by the INFO command.",
        "HELP",
        "    Prints this help."])


# --- MEMORY -------------------------------------------------------------------------



@command("memory", -2, (), group="server",
         summary="A container for memory diagnostics commands.", since="4.0.0")
def cmd_memory(c: Context, args: list[bytes]) -> bytes | None:
    return dispatch("memory", c, args)


@subcommand("memory", "usage", -3, ("readonly",), 2, 2, 1,
            summary="Estimates the bytes one replica uses to store a key and its value.")
def cmd_memory_usage(c: Context, args: list[bytes]) -> bytes | None:
    samples = DEFAULT_SAMPLES
    i = 3
    while i < len(args):
        if args[i].upper() == b"SAMPLES" and i + 1 < len(args):
            n = parse_int(args[i + 1])
            if n is None:
                return ERR_NOT_INT
            if n < 0:
                return ERR_SYNTAX
            samples = n
            i += 2
        else:
            return ERR_SYNTAX
    node = c.node
    key = args[2]
    slot = c.defer()

    def read(result: tuple) -> None:
        e, obj = result
        sib = objmod.read_value(obj, node.now) if e is None else None
        if e is not None:
            slot.set(resp.error(e))
        elif sib is None:
            slot.set(c.nil)
        else:
            # The versioned object as stored: every sibling's value plus its clock (a
            # large value counted where it is stored, not read); a collection's
            # elements besides (collmemory.py).
            own = len(key) + shape.encoded_size(obj) + KEY_OVERHEAD
            if rec.marker_type(sib[2]) is None:
                slot.set(resp.integer(own))
                return

            def counted(res: tuple) -> None:
                if res[0] is not None:
                    slot.set(error_reply(res[0]))
                elif res[1][0] is None:
                    slot.set(c.nil)  # (deleted meanwhile)
                else:
                    slot.set(resp.integer(own + res[1][1]))

            run_step(node, [b"dyn.memusage", key, b"%d" % samples], c.proto, counted,
                     c.r, c.w)

    node.get(key, read, c.r, False)
    return None


@subcommand("memory", "help", 2, ("loading", "stale"), summary="Returns helpful text.")
def cmd_memory_help(c: Context, args: list[bytes]) -> bytes:
    return help_reply(c, "memory", [
        "DOCTOR",
        "    Return memory problems reports.",
        "MALLOC-STATS",
        "    Return internal statistics report from the memory allocator.",
        "PURGE",
        "    Attempt to purge dirty pages for reclamation by the allocator.",
        "STATS",
        "    Return information about the memory usage of the server.",
        "USAGE <key> [SAMPLES <count>]",
        "    Return memory in bytes used by <key> and its value. Nested values are",
        "    sampled up to <count> times (default: 5, 0 means sample all).",
        "HELP",
        "    Prints this help."])


__all__ = ["Error"]
