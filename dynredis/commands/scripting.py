"""Lua scripting: EVAL, EVALSHA, EVAL_RO, EVALSHA_RO, SCRIPT, FUNCTION, FCALL, FCALL_RO.

A script runs at the node that received it, in its Lua thread (dynredis/scripting/);
each redis.call is the cluster's ordinary command, so a script is not isolated from
other clients (README "Lua scripts"). Scripts loaded with SCRIPT LOAD and function
libraries are known to every node and survive restarts (cluster/registry.py).
"""

from __future__ import annotations

from typing import Any

from ..resp import encode as resp
from ..resp.encode import SetReply, Simple
from ..scripting import dump as dumpfmt
from ..scripting.luaengine import ERR_RO_FLAG, Library, Run
from ..scripting.service import sha1hex
from ..scripting.shebang import script_flags
from .context import Context
from .glob import stringmatch
from .table import command, dispatch, help_reply, parse_int, subcommand

ERR_NOSCRIPT = resp.error("NOSCRIPT No matching script. Please use EVAL.")
ERR_NEGATIVE = resp.error("ERR Number of keys can't be negative")
ERR_TOO_MANY = resp.error("ERR Number of keys can't be greater than number of args")
ERR_NOT_INT = resp.error("ERR value is not an integer or out of range")
ERR_NO_CLUSTER = resp.error("ERR Can not run script on cluster, 'no-cluster' flag is set.")

SCRIPTING = ("noscript", "stale", "skip_monitor", "may_replicate", "no_mandatory_keys")


def _keys_and_args(args: list[bytes], bad_int: bytes) -> tuple[list[bytes], list[bytes],
                                                                 bytes | None]:
    n = parse_int(args[2])
    if n is None:
        return [], [], bad_int
    if n > len(args) - 3:
        return [], [], ERR_TOO_MANY
    if n < 0:
        return [], [], ERR_NEGATIVE
    return args[3:3 + n], args[3 + n:], None


def _command_line(args: list[bytes]) -> str:
    return args[0].decode("utf-8", "replace").lower()


def _eval(c: Context, args: list[bytes], by_sha: bool, readonly: bool) -> bytes | None:
    keys, argv, problem = _keys_and_args(args, ERR_NOT_INT)
    if problem is not None:
        return problem
    scripts = c.scripts
    if by_sha:
        sha = args[1].decode("latin-1").lower()
        body = scripts.body_of(sha) if len(sha) == 40 else None
        if body is None:
            return ERR_NOSCRIPT
    else:
        body = args[1]
        sha = sha1hex(body)
    flags, bad = script_flags(body)
    if bad is not None:
        return resp.error("ERR " + bad)
    no_writes = False
    if flags is not None:
        no_writes = "no-writes" in flags
        if readonly and not no_writes:
            return ERR_RO_FLAG
        if "no-cluster" in flags and c.cluster_view:
            return ERR_NO_CLUSTER
    scripts.run(c, "script", sha, body, keys, argv, readonly, no_writes, _command_line(args),
                remember=not by_sha)
    return None


@command("eval", -3, SCRIPTING, group="scripting", since="2.6.0",
         summary="Executes a server-side Lua script (not isolated from other clients).")
def cmd_eval(c: Context, args: list[bytes]) -> bytes | None:
    return _eval(c, args, False, False)


@command("evalsha", -3, SCRIPTING, group="scripting", since="2.6.0",
         summary="Executes a server-side Lua script by SHA1 digest.")
def cmd_evalsha(c: Context, args: list[bytes]) -> bytes | None:
    return _eval(c, args, True, False)


@command("eval_ro", -3, (*SCRIPTING, "readonly"), group="scripting", since="7.0.0",
         summary="Executes a read-only server-side Lua script.")
def cmd_eval_ro(c: Context, args: list[bytes]) -> bytes | None:
    return _eval(c, args, False, True)


@command("evalsha_ro", -3, (*SCRIPTING, "readonly"), group="scripting", since="7.0.0",
         summary="Executes a read-only server-side Lua script by SHA1 digest.")
def cmd_evalsha_ro(c: Context, args: list[bytes]) -> bytes | None:
    return _eval(c, args, True, True)


# --- SCRIPT ------------------------------------------------------------------------------


@command("script", -2, (), group="scripting", since="2.6.0",
         summary="A container for Lua scripts management commands.")
def cmd_script(c: Context, args: list[bytes]) -> bytes | None:
    return dispatch("script", c, args)


@subcommand("script", "load", 3, ("noscript", "stale"), since="2.6.0",
            summary="Loads a server-side Lua script into every node's script cache.")
def cmd_script_load(c: Context, args: list[bytes]) -> bytes | None:
    body = args[2]
    _, bad = script_flags(body)
    if bad is not None:
        return resp.error("ERR " + bad)
    sha = sha1hex(body)
    scripts = c.scripts
    slot = c.defer()

    def compiled(err: bytes | None) -> None:
        if err is not None:
            slot.set(err)
            return
        scripts.load(sha, body, lambda _: slot.set(resp.bulk(sha.encode())))

    scripts.in_lua(lambda engine: engine.compile(sha, body)[1], compiled)
    return None


@subcommand("script", "exists", -3, ("noscript", "stale"), since="2.6.0",
            summary="Determines whether server-side Lua scripts exist in the script cache.")
def cmd_script_exists(c: Context, args: list[bytes]) -> bytes:
    scripts = c.scripts
    return resp.array([resp.ONE if scripts.exists(a.decode("latin-1").lower()) else resp.ZERO
                       for a in args[2:]])


@subcommand("script", "flush", -2, ("noscript",), since="2.6.0",
            summary="Removes all server-side Lua scripts from every node's script cache.")
def cmd_script_flush(c: Context, args: list[bytes]) -> bytes | None:
    if len(args) > 3 or (len(args) == 3 and args[2].upper() not in (b"SYNC", b"ASYNC")):
        return resp.error("ERR SCRIPT FLUSH only support SYNC|ASYNC option")
    slot = c.defer()
    c.scripts.flush_scripts(lambda _: slot.set(resp.OK))
    return None


@subcommand("script", "kill", 2, ("noscript", "allow_busy"), since="2.6.0",
            summary="Terminates a server-side Lua script during execution.")
def cmd_script_kill(c: Context, args: list[bytes]) -> bytes | None:
    return _kill(c, args, False)


def _kill(c: Context, args: list[bytes], functions: bool) -> bytes | None:
    """Kill the script running here or, if none does, the one a client of this node
    sent to the node coordinating its key (cluster/affinity.py)."""
    if not c.scripts.runs:
        target = c.affinity.script_node(functions)
        if target is not None:
            c.affinity.send(c, target, "function" if functions else "script", args)
            return None
    return c.scripts.kill(not functions)


@subcommand("script", "debug", 3, ("noscript",), since="3.2.0",
            summary="Refused: the Lua debugger is not available.")
def cmd_script_debug(c: Context, args: list[bytes]) -> bytes:
    return resp.error("ERR SCRIPT DEBUG is not supported by dynredis")


@subcommand("script", "help", 2, ("loading", "stale"), since="5.0.0",
            summary="Returns helpful text about the different subcommands.")
def cmd_script_help(c: Context, args: list[bytes]) -> bytes:
    return help_reply(c, "script", [
        "EXISTS <sha1> [<sha1> ...]",
        "    Return information about the existence of the scripts in the script cache.",
        "FLUSH [ASYNC|SYNC]",
        "    Flush the Lua scripts cache (on every node).",
        "KILL",
        "    Kill the currently executing Lua script.",
        "LOAD <script>",
        "    Load a script into the scripts cache (of every node) without executing it.",
        "HELP",
        "    Prints this help.",
    ])


# --- FCALL ---------------------------------------------------------------------------------


def _fcall(c: Context, args: list[bytes], readonly: bool) -> bytes | None:
    keys, argv, problem = _keys_and_args(args, resp.error("ERR Bad number of keys provided"))
    name = args[1].decode("utf-8", "surrogateescape")
    scripts = c.scripts
    if problem is not None:
        # Redis looks the function up first: its absence answers before the key count.
        def answer(engine: Any) -> bytes:
            return b"-ERR Function not found\r\n" if name not in engine.functions else problem

        slot = c.defer()
        scripts.in_lua(answer, slot.set)
        return None
    scripts.run(c, "function", name, None, keys, argv, readonly, False, _command_line(args))
    return None


@command("fcall", -3, SCRIPTING, group="scripting", since="7.0.0",
         summary="Invokes a function (not isolated from other clients).")
def cmd_fcall(c: Context, args: list[bytes]) -> bytes | None:
    return _fcall(c, args, False)


@command("fcall_ro", -3, (*SCRIPTING, "readonly"), group="scripting", since="7.0.0",
         summary="Invokes a read-only function.")
def cmd_fcall_ro(c: Context, args: list[bytes]) -> bytes | None:
    return _fcall(c, args, True)


# --- FUNCTION ------------------------------------------------------------------------------


@command("function", -2, (), group="scripting", since="7.0.0",
         summary="A container for function commands.")
def cmd_function(c: Context, args: list[bytes]) -> bytes | None:
    return dispatch("function", c, args)


@subcommand("function", "load", -3, ("write", "denyoom", "noscript"), since="7.0.0",
            summary="Creates a library (on every node).")
def cmd_function_load(c: Context, args: list[bytes]) -> bytes | None:
    replace = False
    for word in args[2:-1]:
        if word.upper() != b"REPLACE":
            return resp.error("ERR Unknown option given: " + word.decode("utf-8", "replace"))
        replace = True
    code = args[-1]
    scripts = c.scripts
    slot = c.defer()

    def checked(result: Any) -> None:
        name, err = result if result is not None else (None, b"-ERR internal error\r\n")
        if err is not None or name is None:
            slot.set(err or b"-ERR internal error\r\n")
            return
        scripts.registry.put("f:" + name, code, lambda _: slot.set(resp.bulk(name.encode())))

    scripts.in_lua(lambda engine: engine.check_library(code, replace), checked)
    return None


@subcommand("function", "delete", 3, ("write", "noscript"), since="7.0.0",
            summary="Deletes a library and its functions (on every node).")
def cmd_function_delete(c: Context, args: list[bytes]) -> bytes | None:
    name = args[2].decode("utf-8", "surrogateescape")
    scripts = c.scripts
    if name not in scripts.libraries_code():
        return resp.error("ERR Library not found")
    slot = c.defer()
    scripts.registry.put("f:" + name, None, lambda _: slot.set(resp.OK))
    return None


@subcommand("function", "flush", -2, ("write", "noscript"), since="7.0.0",
            summary="Deletes all libraries and functions (on every node).")
def cmd_function_flush(c: Context, args: list[bytes]) -> bytes | None:
    if len(args) > 3 or (len(args) == 3 and args[2].upper() not in (b"SYNC", b"ASYNC")):
        return resp.error("ERR FUNCTION FLUSH only supports SYNC|ASYNC option")
    slot = c.defer()
    c.scripts.registry.flush("f", lambda _: slot.set(resp.OK))
    return None


def _library_record(lib: Library, withcode: bool) -> dict[str, Any]:
    functions = []
    for fname, (desc, flags) in lib.functions.items():
        functions.append({"name": fname.encode(), "description": desc,
                          "flags": SetReply(Simple(f) for f in flags)})
    record: dict[str, Any] = {"library_name": lib.name.encode(), "engine": b"LUA",
                              "functions": functions}
    if withcode:
        record["library_code"] = lib.code
    return record


@subcommand("function", "list", -2, ("noscript",), since="7.0.0",
            summary="Returns information about all libraries.")
def cmd_function_list(c: Context, args: list[bytes]) -> bytes | None:
    withcode = False
    pattern: bytes | None = None
    i = 2
    while i < len(args):
        word = args[i].upper()
        if word == b"WITHCODE" and not withcode:
            withcode = True
        elif word == b"LIBRARYNAME" and pattern is None:
            if i >= len(args) - 1:
                return resp.error("ERR library name argument was not given")
            i += 1
            pattern = args[i]
        else:
            return resp.error("ERR Unknown argument " + args[i].decode("utf-8", "replace"))
        i += 1
    match = None
    if pattern is not None:
        wanted = pattern

        def match(name: str) -> bool:
            return stringmatch(wanted, name.encode(), nocase=True)

    proto = c.proto
    slot = c.defer()
    c.scripts.in_lua(
        lambda engine: resp.encode([_library_record(lib, withcode)
                                    for lib in engine.list_libraries(match, withcode)], proto),
        slot.set)
    return None


@subcommand("function", "dump", 2, ("noscript",), since="7.0.0",
            summary="Dumps all libraries into a serialized binary payload.")
def cmd_function_dump(c: Context, args: list[bytes]) -> bytes:
    libs = c.scripts.libraries_code()
    return resp.bulk(dumpfmt.dump([libs[n] for n in sorted(libs)]))


@subcommand("function", "restore", -3, ("write", "denyoom", "noscript"), since="7.0.0",
            summary="Restores all libraries from a payload (on every node).")
def cmd_function_restore(c: Context, args: list[bytes]) -> bytes | None:
    if len(args) > 4:
        return resp.error("ERR syntax error")
    policy = "APPEND"
    if len(args) == 4:
        policy = args[3].decode("utf-8", "replace").upper()
        if policy not in ("FLUSH", "APPEND", "REPLACE"):
            return resp.error("ERR Wrong restore policy given, value should be either FLUSH, "
                              "APPEND or REPLACE.")
    payload = args[2]
    if not dumpfmt.verify(payload):
        return resp.error("ERR DUMP payload version or checksum are wrong")
    try:
        codes = dumpfmt.load(payload)
    except dumpfmt.PayloadError as exc:
        return resp.error(f"ERR {exc}")
    scripts = c.scripts
    slot = c.defer()

    def checked(result: Any) -> None:
        names, err = result if result is not None else (None, b"-ERR internal error\r\n")
        if err is not None or names is None:
            slot.set(err or b"-ERR internal error\r\n")
            return
        changes: list[tuple[str, bytes | None]] = [("f*", None)] if policy == "FLUSH" else []
        changes += [("f:" + n, code) for n, code in zip(names, codes, strict=True)]
        scripts.registry.put_many(changes, lambda _: slot.set(resp.OK))

    scripts.in_lua(lambda engine: engine.check_restore(codes, policy), checked)
    return None


@subcommand("function", "stats", 2, ("noscript", "allow_busy"), since="7.0.0",
            summary="Returns information about the function that's currently running.")
def cmd_function_stats(c: Context, args: list[bytes]) -> bytes:
    scripts = c.scripts
    running: Run | None = scripts.running_function()
    script = None
    if running is not None:
        import time

        script = {"name": running.name.encode(),
                  "command": [running.command.encode(), running.name.encode(),
                              b"%d" % len(running.keys), *running.keys, *running.args],
                  "duration_ms": int((time.monotonic() - running.started) * 1000)}
    return resp.encode({"running_script": script, "engines": {"LUA": {
        "libraries_count": scripts.libraries, "functions_count": scripts.functions}}}, c.proto)


@subcommand("function", "kill", 2, ("noscript", "allow_busy"), since="7.0.0",
            summary="Terminates a function during execution.")
def cmd_function_kill(c: Context, args: list[bytes]) -> bytes | None:
    return _kill(c, args, True)


@subcommand("function", "help", 2, ("loading", "stale"), since="7.0.0",
            summary="Returns helpful text about the different subcommands.")
def cmd_function_help(c: Context, args: list[bytes]) -> bytes:
    return help_reply(c, "function", [
        "LOAD [REPLACE] <FUNCTION CODE>",
        "    Create a new library with the given library name and code (on every node).",
        "DELETE <LIBRARY NAME>",
        "    Delete the given library.",
        "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
        "    Return general information on all the libraries:",
        "    * Library name",
        "    * The engine used to run the Library",
        "    * Library description",
        "    * Functions list",
        "    * Library code (if WITHCODE is given)",
        "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
        "STATS",
        "    Return information about the current function running:",
        "    * Function name",
        "    * Command used to run the function",
        "    * Duration in MS that the function is running",
        "    If no function is running, return nil",
        "    In addition, returns a list of available engines.",
        "KILL",
        "    Kill the current running function.",
        "FLUSH [ASYNC|SYNC]",
        "    Delete all the libraries.",
        "DUMP",
        "    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE command",
        "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
        "    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
        "    control how to handle existing libraries (default APPEND):",
        "    * FLUSH: delete all existing libraries.",
        "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
        "    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old",
        "      libraries with the new libraries (notice that even on this option there is a chance of failure",
        "      in case of functions name collision with another library).",
        "HELP",
        "    Prints this help.",
    ])
