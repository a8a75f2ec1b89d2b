"""ACL: users beyond `default`, known to the whole cluster (server/acl_table.py).

SETUSER GETUSER DELUSER USERS LIST WHOAMI CAT GENPASS DRYRUN HELP as Redis answers
them, for the rules server/acl_users.py supports. LOAD and SAVE answer as a Redis
without an ACL file does; LOG is refused (no denial log is kept).
"""

from __future__ import annotations

import os

from ..resp import encode as resp
from ..server.acl_users import RuleError, catalog
from .context import Context
from .table import command, dispatch, err_arity, help_reply, lookup, parse_int, subcommand

ADMIN = ("admin", "noscript", "loading", "stale")
PLAIN = ("noscript", "loading", "stale")


def noperm(reason: str, name: str) -> bytes:
    if reason == "key":
        return resp.error("NOPERM this user has no permissions to access one of the keys "
                          "used as arguments")
    if reason == "channel":
        return resp.error("NOPERM this user has no permissions to access one of the "
                          "channels used as arguments")
    return resp.error(f"NOPERM this user has no permissions to run the '{name}' command")


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


@command("acl", -2, ("sentinel",), group="server",
         summary="A container for Access List Control commands.", since="6.0.0")
def cmd_acl(c: Context, args: list[bytes]) -> bytes | None:
    return dispatch("acl", c, args)


@subcommand("acl", "setuser", -3, ADMIN, summary="Creates and modifies an ACL user and its rules.")
def cmd_acl_setuser(c: Context, args: list[bytes]) -> bytes:
    name = _text(args[2])
    if any(ch in name for ch in " \0"):
        return resp.error("ERR Usernames can't contain spaces or null characters")
    try:
        c.users.set_user(name, [_text(a) for a in args[3:]])
    except RuleError as exc:
        return resp.error(f"ERR {exc}")
    return resp.OK


@subcommand("acl", "getuser", 3, ADMIN, summary="Lists the ACL rules of a user.")
def cmd_acl_getuser(c: Context, args: list[bytes]) -> bytes:
    user = c.users.get(_text(args[2]))
    return user.getuser(c.proto) if user is not None else c.nil


@subcommand("acl", "deluser", -3, ADMIN, summary="Deletes ACL users, and terminates "
                                                 "their connections.")
def cmd_acl_deluser(c: Context, args: list[bytes]) -> bytes:
    names = [_text(a) for a in args[2:]]
    if "default" in names:
        return resp.error("ERR The 'default' user cannot be removed")
    users = c.users
    return resp.integer(sum(1 for n in dict.fromkeys(names) if users.delete(n)))


@subcommand("acl", "users", 2, ADMIN, summary="Lists all ACL users.")
def cmd_acl_users(c: Context, args: list[bytes]) -> bytes:
    return resp.encode(c.users.names(), c.proto)


@subcommand("acl", "list", 2, ADMIN, summary="Dumps the effective rules in ACL file format.")
def cmd_acl_list(c: Context, args: list[bytes]) -> bytes:
    users = c.users
    found = ((n, users.get(n)) for n in users.names())
    return resp.encode([f"user {n} {u.describe()}" for n, u in found if u is not None],
                       c.proto)


@subcommand("acl", "whoami", 2, PLAIN, summary="Returns the authenticated username of "
                                               "the current connection.")
def cmd_acl_whoami(c: Context, args: list[bytes]) -> bytes:
    return resp.bulk(c.user.encode())


@subcommand("acl", "cat", -2, PLAIN, summary="Lists the ACL categories, or the commands "
                                             "inside a category.")
def cmd_acl_cat(c: Context, args: list[bytes]) -> bytes:
    cat = catalog()
    if len(args) == 2:
        return resp.encode(list(cat.all_categories), c.proto)
    if len(args) > 3:
        return err_arity("acl|cat")
    wanted = _text(args[2]).lower().removeprefix("@")
    if wanted not in cat.all_categories:
        return resp.error(f"ERR Unknown category '{_text(args[2])}'")
    return resp.encode(sorted(n for n, cs in cat.categories.items() if wanted in cs),
                       c.proto)


@subcommand("acl", "genpass", -2, PLAIN, summary="Generates a pseudorandom, secure "
                                                 "password that can be used to identify ACL users.")
def cmd_acl_genpass(c: Context, args: list[bytes]) -> bytes:
    bits = 256
    if len(args) > 3:
        return err_arity("acl|genpass")
    if len(args) == 3:
        n = parse_int(args[2])
        if n is None or not 0 < n <= 4096:
            return resp.error("ERR ACL GENPASS argument must be the number of bits for the "
                              "output password, a positive number up to 4096")
        bits = n
    chars = (bits + 3) // 4
    return resp.bulk(os.urandom((chars + 1) // 2).hex()[:chars].encode())


@subcommand("acl", "dryrun", -4, ADMIN, summary="Simulates the execution of a command by "
                                                "a user, without executing the command.")
def cmd_acl_dryrun(c: Context, args: list[bytes]) -> bytes:
    user = c.users.get(_text(args[2]))
    if user is None:
        return resp.error(f"ERR User '{_text(args[2])}' not found")
    cmd = lookup(args[3])
    if cmd is None:
        return resp.error(f"ERR Command '{_text(args[3])}' not found")
    if not cmd.arity_ok(len(args) - 3):
        return err_arity(cmd.name)
    denied = user.denial(cmd, args[3:])
    if denied is None:
        return resp.OK
    reason, name = denied
    if reason in ("key", "channel"):
        return resp.bulk(f"This user has no permissions to access the '{name}' {reason}"
                         .encode())
    return resp.bulk(f"This user has no permissions to run the '{name}' command".encode())


_NO_FILE = ("ERR This Redis instance is not configured to use an ACL file. You may want to "
            "specify users via the ACL SETUSER command and then issue a CONFIG REWRITE "
            "(assuming you have a Redis configuration file set) in order to store users in "
            "the Redis configuration.")


@subcommand("acl", "load", 2, ADMIN, summary="Reloads the rules from the configured ACL file.")
def cmd_acl_load(c: Context, args: list[bytes]) -> bytes:
    return resp.error(_NO_FILE)


@subcommand("acl", "save", 2, ADMIN, summary="Saves the effective ACL rules in the "
                                             "configured ACL file.")
def cmd_acl_save(c: Context, args: list[bytes]) -> bytes:
    return resp.error(_NO_FILE)


@subcommand("acl", "log", -2, ADMIN, summary="Lists recent security events generated due "
                                             "to ACL rules (not kept by dynredis).")
def cmd_acl_log(c: Context, args: list[bytes]) -> bytes:
    return resp.error("ERR ACL LOG is not supported by dynredis (denials are not logged)")


@subcommand("acl", "help", 2, ("loading", "stale"), summary="Returns helpful text.")
def cmd_acl_help(c: Context, args: list[bytes]) -> bytes:
    return help_reply(c, "acl", [
        "CAT [<category>]",
        "    List all commands that belong to <category>, or all command categories",
        "    when no category is specified.",
        "DELUSER <username> [<username> ...]",
        "    Delete a list of users.",
        "DRYRUN <username> <command> [<arg> ...]",
        "    Returns whether the user can execute the given command without executing the command.",
        "GETUSER <username>",
        "    Get the user's details.",
        "GENPASS [<bits>]",
        "    Generate a secure 256-bit user password. The optional `bits` argument can",
        "    be used to specify a different size.",
        "LIST",
        "    Show users details in config file format.",
        "SETUSER <username> <attribute> [<attribute> ...]",
        "    Create or modify a user with the specified attributes.",
        "USERS",
        "    List all the registered usernames.",
        "WHOAMI",
        "    Return the current connection username.",
        "HELP",
        "    Print this help."])

