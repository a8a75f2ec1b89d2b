"""Connection and server commands: PING ECHO QUIT HELLO AUTH SELECT CLIENT COMMAND INFO."""

from __future__ import annotations

import hmac
from typing import Any

from ..resp import encode as resp
from ..resp.encode import Error, Simple, Verbatim
from .table import (
    ERR_NOT_INT,
    Command,
    command,
    commands,
    err_arity,
    err_subcommand,
    lookup,
    parse_int,
)

REDIS_VERSION = "7.0.15"
ERR_NOPASS = resp.error(
    "ERR AUTH <password> called without any password configured for the default user. "
    "Are you sure your configuration is correct?"
)
ERR_WRONGPASS = resp.error("WRONGPASS invalid username-password pair or user is disabled.")


@command("ping", -1, ("fast", "stale"), group="connection", summary="Returns the server's liveliness response.")
def cmd_ping(c: Any, args: list[bytes]) -> bytes:
    if len(args) == 1:
        return resp.PONG
    if len(args) == 2:
        return resp.bulk(args[1])
    return err_arity("ping")


@command("echo", 2, ("fast", "stale"), group="connection", summary="Returns the given string.")
def cmd_echo(c: Any, args: list[bytes]) -> bytes:
    return resp.bulk(args[1])


@command("quit", -1, ("fast", "stale", "noauth"), group="connection", summary="Closes the connection.")
def cmd_quit(c: Any, args: list[bytes]) -> bytes:
    c.close_after_reply()
    return resp.OK


def _check_password(c: Any, user: bytes, password: bytes) -> bool:
    required = c.server.requirepass
    if user.lower() != b"default":
        return False
    if required is None:
        return True
    return hmac.compare_digest(password, required.encode())


@command("auth", -2, ("fast", "stale", "noauth"), group="connection", summary="Authenticates the connection.")
def cmd_auth(c: Any, args: list[bytes]) -> bytes:
    if len(args) > 3:
        return resp.error("ERR syntax error")
    if len(args) == 2:
        if c.server.requirepass is None:
            return ERR_NOPASS
        user, password = b"default", args[1]
    else:
        user, password = args[1], args[2]
    if not _check_password(c, user, password):
        return ERR_WRONGPASS
    c.authed = True
    return resp.OK


@command("hello", -1, ("fast", "stale", "noauth"), group="connection", summary="Handshakes with the server.")
def cmd_hello(c: Any, args: list[bytes]) -> bytes:
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
            if not _check_password(c, args[i + 1], args[i + 2]):
                return ERR_WRONGPASS
            c.authed = True
            i += 3
        elif opt == b"SETNAME" and i + 1 < len(args):
            name = args[i + 1]
            i += 2
        else:
            return resp.error(f"ERR Syntax error in HELLO option '{args[i].decode('utf-8', 'replace')}'")
    if not c.authed:
        return resp.error("NOAUTH HELLO must be called with the client already authenticated, "
                          "otherwise the HELLO <proto> AUTH <user> <pass> option can be used to "
                          "authenticate the client and select the RESP protocol version at the same time")
    if name is not None:
        c.name = name
    c.proto = proto
    return resp.encode({
        "server": "redis",
        "version": REDIS_VERSION,
        "proto": proto,
        "id": c.id,
        "mode": "standalone",
        "role": "master",
        "modules": [],
    }, proto)


@command("select", 2, ("fast", "loading", "stale"), group="connection", summary="Changes the selected database.")
def cmd_select(c: Any, args: list[bytes]) -> bytes:
    db = parse_int(args[1])
    if db is None:
        return ERR_NOT_INT
    if db != 0:
        return resp.error("ERR SELECT is not allowed in cluster mode")
    return resp.OK


# --- CLIENT -------------------------------------------------------------------------


def _client_info(c: Any) -> str:
    name = (c.name or b"").decode("utf-8", "replace")
    return (f"id={c.id} addr={c.peer} laddr={c.local} fd=-1 name={name} age={c.age()} idle=0 "
            f"flags=N db=0 sub=0 psub=0 ssub=0 multi=-1 qbuf=0 qbuf-free=0 argv-mem=0 "
            f"multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd={c.last_cmd} "
            f"user=default redir=-1 resp={c.proto} lib-name={c.lib_name} lib-ver={c.lib_ver}")


@command("client", -2, ("stale",), group="connection", summary="A container for client connection commands.")
def cmd_client(c: Any, args: list[bytes]) -> bytes:
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
    if sub == b"INFO" and n == 2:
        return resp.encode(Verbatim(_client_info(c) + "\n"), c.proto)
    if sub == b"LIST":
        lines = "".join(_client_info(x) + "\n" for x in c.server.clients.values())
        return resp.encode(Verbatim(lines), c.proto)
    if sub in (b"NO-EVICT", b"NO-TOUCH") and n == 3 and args[2].upper() in (b"ON", b"OFF"):
        return resp.OK
    if sub == b"HELP":
        return resp.encode([Simple(x) for x in (
            "CLIENT <subcommand> [<arg> ...]. Subcommands are:",
            "ID", "GETNAME", "SETNAME <name>", "SETINFO <option> <value>", "INFO", "LIST",
            "NO-EVICT (ON|OFF)", "NO-TOUCH (ON|OFF)")], c.proto)
    if sub in (b"SETNAME", b"GETNAME", b"ID", b"SETINFO", b"INFO", b"NO-EVICT", b"NO-TOUCH"):
        return resp.error(f"ERR wrong number of arguments for 'client|{sub.decode().lower()}' command")
    return err_subcommand(args[1], "client")


# --- COMMAND ------------------------------------------------------------------------


def _acl(cmd: Command) -> list[Simple]:
    cats = [f"@{cmd.group}"]
    if "write" in cmd.flags:
        cats.append("@write")
    if "readonly" in cmd.flags:
        cats.append("@read")
    if "fast" in cmd.flags:
        cats.append("@fast")
    else:
        cats.append("@slow")
    return [Simple(x) for x in cats]


def command_info(cmd: Command) -> list:
    key_specs = []
    if cmd.first_key:
        flags = [Simple("RW" if "write" in cmd.flags else "RO"),
                 Simple("ACCESS" if "readonly" in cmd.flags else "UPDATE")]
        key_specs.append({
            "flags": flags,
            "begin_search": {"type": "index", "spec": {"index": cmd.first_key}},
            "find_keys": {"type": "range", "spec": {
                "lastkey": cmd.last_key - cmd.first_key if cmd.last_key >= 0 else -1,
                "keystep": cmd.step, "limit": 0}},
        })
    return [cmd.name, cmd.arity, [Simple(f) for f in cmd.flags], cmd.first_key, cmd.last_key,
            cmd.step, _acl(cmd), [], key_specs, []]


def command_docs(cmd: Command) -> dict:
    return {"summary": cmd.summary or cmd.name, "since": cmd.since, "group": cmd.group,
            "complexity": "O(1)", "arguments": []}


@command("command", -1, ("loading", "stale"), group="server", summary="Returns detailed information about all commands.")
def cmd_command(c: Any, args: list[bytes]) -> bytes:
    if len(args) == 1:
        return resp.encode([command_info(x) for x in commands()], c.proto)
    sub = args[1].upper()
    if sub == b"COUNT":
        if len(args) != 2:
            return err_arity("command|count")
        return resp.integer(len(commands()))
    if sub == b"INFO":
        wanted = args[2:]
        if not wanted:
            return resp.encode([command_info(x) for x in commands()], c.proto)
        return resp.encode([command_info(x) if (x := lookup(n)) else None for n in wanted], c.proto)
    if sub == b"DOCS":
        chosen = [lookup(n) for n in args[2:]] if len(args) > 2 else commands()
        return resp.encode({x.name: command_docs(x) for x in chosen if x is not None}, c.proto)
    if sub == b"LIST" and len(args) == 2:
        return resp.encode([x.name for x in commands()], c.proto)
    if sub == b"GETKEYS" and len(args) >= 3:
        target = lookup(args[2])
        if target is None:
            return resp.error("ERR Invalid command specified")
        if not target.arity_ok(len(args) - 2):
            return resp.error("ERR Invalid number of arguments specified for command")
        words = args[2:]
        if not target.first_key:
            return resp.error("ERR The command has no key arguments")
        last = target.last_key if target.last_key >= 0 else len(words) + target.last_key
        return resp.encode(list(words[target.first_key:last + 1:target.step]), c.proto)
    return err_subcommand(args[1], "command")


# --- INFO ---------------------------------------------------------------------------

DEFAULT_SECTIONS = ("server", "clients", "stats", "keyspace", "dynamo")


@command("info", -1, ("loading", "stale"), group="server", summary="Returns information and statistics about the server.")
def cmd_info(c: Any, args: list[bytes]) -> bytes:
    sections = c.server.info_sections()
    wanted = [a.decode("utf-8", "replace").lower() for a in args[1:]]
    if not wanted or any(w in ("all", "everything", "default") for w in wanted):
        wanted = list(DEFAULT_SECTIONS)
    parts = []
    for name in wanted:
        fields = sections.get(name)
        if fields is None:
            continue
        lines = [f"# {name.capitalize()}"] + [f"{k}:{v}" for k, v in fields().items()]
        parts.append("\r\n".join(lines) + "\r\n")
    return resp.encode(Verbatim("\r\n".join(parts)), c.proto)


__all__ = ["Error"]
