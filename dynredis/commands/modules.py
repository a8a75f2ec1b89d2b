"""MODULE: no module is loaded, and loading one is refused as Redis 7.0 refuses it by
default (`enable-module-command no`).

Clients and tools ask MODULE LIST to learn whether a server has RedisJSON or
RediSearch: an empty list answers them as a plain Redis does, where an unknown command
broke some of them. Loading native code into a node has no meaning for a cluster whose
replicas must all run the same commands."""

from __future__ import annotations

from .context import Context
from .table import command, dispatch, err_protected, help_reply, subcommand

ADMIN = ("admin", "noscript")
# LOAD, LOADEX and UNLOAD are refused wherever they are sent, before authentication and
# inside MULTI as well (server/client.py reads the flag on a subcommand too).
REFUSED = (*ADMIN, "no_async_loading", "protected")
ERR_MODULE = err_protected("module")


@command("module", -2, (), group="server", since="4.0.0",
         summary="A container for module commands.")
def cmd_module(c: Context, args: list[bytes]) -> bytes | None:
    return dispatch("module", c, args)


@subcommand("module", "list", 2, ADMIN, summary="Returns all loaded modules.", since="4.0.0")
def cmd_module_list(c: Context, args: list[bytes]) -> bytes:
    return b"*0\r\n"


@subcommand("module", "load", -3, REFUSED, summary="Loads a module.", since="4.0.0")
def cmd_module_load(c: Context, args: list[bytes]) -> bytes:
    return ERR_MODULE


@subcommand("module", "loadex", -3, REFUSED, summary="Loads a module using extended "
            "parameters.", since="7.0.0")
def cmd_module_loadex(c: Context, args: list[bytes]) -> bytes:
    return ERR_MODULE


@subcommand("module", "unload", 3, REFUSED, summary="Unloads a module.", since="4.0.0")
def cmd_module_unload(c: Context, args: list[bytes]) -> bytes:
    return ERR_MODULE


@subcommand("module", "help", 2, ("loading", "stale"), summary="Returns helpful text about "
            "the different subcommands.", since="5.0.0")
def cmd_module_help(c: Context, args: list[bytes]) -> bytes:
    return help_reply(c, "module", [
        "LIST",
        "    Return a list of loaded modules.",
        "LOAD <path> [<arg> ...]",
        "    Load a module library from <path>, passing to it any optional arguments.",
        "LOADEX <path> [[CONFIG NAME VALUE] [CONFIG NAME VALUE]] [ARGS ...]",
        "    Load a module library from <path>, while passing it module configurations and "
        "optional arguments.",
        "UNLOAD <name>",
        "    Unload a module.",
        "HELP",
        "    Prints this help."])
