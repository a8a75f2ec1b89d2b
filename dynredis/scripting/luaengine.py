"""One Lua 5.1 state and everything that runs in it: scripts, function libraries.

Used by one thread only (the Lua thread of scripting/worker.py, or the caller itself in
tests). A run is started with `start` and goes on with `resume`; each time it stops it
says why through its callbacks: `on_call(kind, resp, args)` (it wants a command run; the
answer comes back as `resume(run, reply bytes)`) or `on_done(reply bytes)`.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lupa.lua51 import LuaRuntime

from . import lualibs
from .shebang import FLAGS, library_name
from .untail import untail

log = logging.getLogger("dynredis.scripts")

BRIDGE = (Path(__file__).with_name("bridge.lua")).read_text()
COMPILED_MAX = 1000  # compiled scripts kept (recompiled from the body when needed again)
LOAD_TIMEOUT_S = 0.5  # a library's code must register its functions within this
KILLED = b"-ERR Script killed by user with SCRIPT KILL...\r\n"
ERR_RO_FLAG = b"-ERR Can not execute a script with write flag using *_ro command.\r\n"
LUA_LOG_LEVELS = (logging.DEBUG, logging.DEBUG, logging.INFO, logging.WARNING)


def _deny(obj: Any, name: Any, is_setting: bool) -> Any:
    raise AttributeError("Python objects are not reachable from scripts")


def version_num(version: str) -> int:
    major, minor, patch = (int(x) for x in version.split("."))
    return (major << 16) | (minor << 8) | patch


class Run:
    """One EVAL or FCALL, from start to reply; shared by the main and the Lua thread
    (each field written by one of them only)."""

    __slots__ = ("id", "kind", "name", "body", "keys", "args", "caller", "readonly",
                 "no_writes", "conn", "slot", "started", "wrote", "killed", "lua",
                 "on_call", "on_done", "command", "gated", "leave", "db", "compiled")

    def __init__(self, kind: str, name: str, keys: list[bytes], args: list[bytes],
                 caller: int, readonly: bool) -> None:
        self.id = 0
        self.kind = kind  # "script" or "function"
        self.name = name  # the script's SHA1, or the function's name
        self.body: bytes | None = None
        self.keys = keys
        self.args = args
        self.caller = caller  # the calling client's protocol (2 or 3)
        self.readonly = readonly  # EVAL_RO, EVALSHA_RO, FCALL_RO
        self.no_writes = readonly  # write commands refused (also by the no-writes flag)
        self.conn: Any = None
        self.slot: Any = None
        self.started = time.monotonic()
        self.wrote = False
        self.killed = False
        self.lua: Any = None
        self.command = ""
        self.gated: list[bytes] | None = None  # the keys whose gates it holds
        self.leave: Callable[[], None] = nothing
        self.on_call: Callable[[bytes, int, list[bytes]], None] = nothing
        self.on_done: Callable[[bytes], None] = nothing
        self.db = 0  # the database its redis.call commands use (SELECT in it changes it)
        self.compiled = False  # its script compiled (set by the Lua thread)


def nothing(*args: Any) -> None:
    return None


@dataclass
class Library:
    name: str
    code: bytes
    # function name -> (description or None, flags in Redis' order)
    functions: dict[str, tuple[bytes | None, tuple[str, ...]]] = field(default_factory=dict)
    callbacks: dict[str, Any] = field(default_factory=dict)


class LuaEngine:
    def __init__(self, redis_version: str = "7.0.15") -> None:
        lua = LuaRuntime(encoding=None, unpack_returned_tuples=True, register_eval=False,
                         register_builtins=False, attribute_filter=_deny)
        self.lua = lua
        lua.globals().python = None
        py = lua.table_from({
            b"check": self._check,
            b"sha1hex": lambda s: hashlib.sha1(s).hexdigest().encode(),
            b"log": self._log,
            b"json_encode": lualibs.json_encode,
            b"json_decode": lualibs.json_decoder(lua),
            b"bit": lua.table_from({k.encode(): f for k, f in lualibs.BIT.items()}),
            b"untail": untail,
            b"version": redis_version.encode(),
            b"version_num": version_num(redis_version),
        })
        chunk = lua.globals().loadstring(BRIDGE.encode(), b"=dynredis")
        if isinstance(chunk, tuple):
            raise RuntimeError(f"bridge.lua does not compile: {chunk[1]!r}")
        self.bridge = chunk(py)
        self._start = self.bridge.start
        self._resume = self.bridge.resume
        self._part = self.bridge.part
        self._result_part = self.bridge.result_part
        self.compiled: OrderedDict[str, Any] = OrderedDict()
        self.libraries: dict[str, Library] = {}
        self.functions: dict[str, Library] = {}  # function name -> its library
        self.pending: dict[bytes, tuple[str, list[tuple[Any, ...]]]] = {}
        # What the main thread reads to answer BUSY and FUNCTION STATS: the run being
        # executed and since when (monotonic seconds), or None between two resumes.
        self.current: Run | None = None
        self.since = 0.0
        self.load_deadline = 0.0

    # --- the hook (every HOOK_COUNT instructions of any run) -------------------------------

    def _check(self) -> int:
        run = self.current
        if run is not None and run.killed:
            return 1
        if self.load_deadline and time.monotonic() > self.load_deadline:
            return 2
        return 0

    def _log(self, level: int, text: bytes) -> None:
        log.log(LUA_LOG_LEVELS[int(level)], "script: %s", text.decode("utf-8", "replace"))

    # --- runs ------------------------------------------------------------------------------

    def compile(self, sha: str, body: bytes) -> tuple[Any, bytes | None]:
        fn = self.compiled.get(sha)
        if fn is not None:
            self.compiled.move_to_end(sha)
            return fn, None
        out = self.bridge.compile(body)
        fn, err = (out if isinstance(out, tuple) else (out, None))
        if fn is None:
            return None, b"-" + _one_line(err) + b"\r\n"
        self.compiled[sha] = fn
        if len(self.compiled) > COMPILED_MAX:
            self.compiled.popitem(last=False)
        return fn, None

    def forget_scripts(self) -> None:
        self.compiled.clear()

    def start(self, run: Run) -> None:
        """Begin a run (its body, for scripts, already in `run.body`)."""
        lua = self.lua
        if run.kind == "script":
            assert run.body is not None
            fn, err = self.compile(run.name, run.body)
            if err is not None:
                run.on_done(err)
                return
            run.compiled = True
            run.lua = self._start(fn, lua.table_from(run.keys), lua.table_from(run.args),
                                  run.caller, run.name.encode(), False)
        else:
            lib = self.functions.get(run.name)
            if lib is None:
                run.on_done(b"-ERR Function not found\r\n")
                return
            flags = lib.functions[run.name][1]
            if "no-writes" in flags:
                run.no_writes = True
            elif run.readonly:
                run.on_done(ERR_RO_FLAG)
                return
            run.lua = self._start(lib.callbacks[run.name], lua.table_from(run.keys),
                                  lua.table_from(run.args), run.caller, run.name.encode(), True)
        self.resume(run, None)

    def resume(self, run: Run, reply: bytes | list[bytes] | None) -> None:
        """Go on with `run`, its redis.call answered `reply`: bytes, or a reply made over
        the loop's turns as the list of its parts (a large value, 1 MiB a part)."""
        if run.killed and reply is not None:
            run.on_done(KILLED)
            return
        self.current = run
        self.since = time.monotonic()
        try:
            if type(reply) is list:
                # Handed to Lua a part a call and joined there (the GIL let go): a value
                # of 100 MiB handed at once was copied into Lua holding the GIL, the
                # node's event loop waiting 100 ms or more for it.
                for part in reply[:-1]:
                    self._part(run.lua, part)
                reply = reply[-1]
            out = self._resume(run.lua, reply)
        finally:
            self.current = None
        if out[0] == b"call":
            run.on_call(out[1], out[2], list(out[3:]))
        elif out[0] == b"parts":
            run.on_done(self._long_reply(run))
        else:
            run.on_done(out[1])

    def _long_reply(self, run: Run) -> bytes:
        """A run's long reply, taken out of Lua a part (1 MiB) a call and joined with
        the GIL let go (bytes.join does for large inputs): a 100 MiB reply taken at once
        held the GIL, and the node's event loop with it, for 100 ms or more."""
        take, lua = self._result_part, run.lua
        parts = []
        while (part := take(lua)) is not None:
            parts.append(part)
        return b"".join(parts)

    # --- function libraries ----------------------------------------------------------------

    def _register(self, code: bytes) -> tuple[str | None, Any, bytes | None]:
        """Run a library's code: (name, registrations, None) or (None, None, error)."""
        cached = self.pending.pop(code, None)
        if cached is not None:
            return cached[0], cached[1], None
        name, problem = library_name(code)
        if name is None:
            return None, None, b"-ERR " + (problem or "").encode() + b"\r\n"
        self.load_deadline = time.monotonic() + LOAD_TIMEOUT_S
        try:
            out = self.bridge.load_library(code)
        finally:
            self.load_deadline = 0.0
        regs, err = (out if isinstance(out, tuple) else (out, None))
        if regs is None:
            return None, None, b"-" + _one_line(err) + b"\r\n"
        found = []
        for i in range(1, len(regs) + 1):
            r = regs[i]
            flags = r[b"flags"]
            names = {flags[j].decode() for j in range(1, len(flags) + 1)}
            found.append((r[b"name"].decode(), r[b"callback"], r[b"description"],
                          tuple(f for f in FLAGS if f in names)))
        return name, found, None

    def _library(self, name: str, code: bytes, regs: Any) -> Library:
        lib = Library(name, code)
        for fname, callback, desc, flags in regs:
            lib.functions[fname] = (desc, flags)
            lib.callbacks[fname] = callback
        return lib

    def check_library(self, code: bytes, replace: bool) -> tuple[str | None, bytes | None]:
        """FUNCTION LOAD's checks against the libraries of this node: the library's name,
        or the error reply. Nothing is installed (`sync` does that)."""
        name, regs, err = self._register(code)
        if name is None:
            return None, err
        old = self.libraries.get(name)
        if old is not None and not replace:
            return None, f"-ERR Library '{name}' already exists\r\n".encode()
        for fname, *_ in regs:
            owner = self.functions.get(fname)
            if owner is not None and owner.name != name:
                return None, f"-ERR Function {fname} already exists\r\n".encode()
        self.pending[code] = (name, regs)
        return name, None

    def check_restore(self, codes: list[bytes], policy: str) -> tuple[list[str] | None,
                                                                      bytes | None]:
        """FUNCTION RESTORE's checks: the libraries' names, or the error reply."""
        names: list[str] = []
        libs: dict[str, Library] = {}
        for code in codes:
            name, regs, err = self._register(code)
            if name is None:
                return None, err
            if name in libs:
                return None, f"-ERR Library {name} already exists\r\n".encode()
            libs[name] = self._library(name, code, regs)
            names.append(name)
        kept = {} if policy == "FLUSH" else dict(self.libraries)
        for name in names:
            if name in kept:
                if policy == "APPEND":
                    return None, f"-ERR Library {name} already exists\r\n".encode()
                del kept[name]
        taken = {f for lib in kept.values() for f in lib.functions}
        for lib in libs.values():
            for fname in lib.functions:
                if fname in taken:
                    return None, f"-ERR Function {fname} already exists\r\n".encode()
                taken.add(fname)
        for lib in libs.values():
            self.pending[lib.code] = (lib.name, [
                (f, lib.callbacks[f], d, fl) for f, (d, fl) in lib.functions.items()])
        return names, None

    def sync(self, wanted: dict[str, bytes]) -> tuple[int, int]:
        """Make the installed libraries the `wanted` ones (name -> code). A library that
        cannot be installed (its code fails here, or a function name another library
        already has) is left out and logged. Returns (libraries, functions)."""
        libraries: dict[str, Library] = {}
        functions: dict[str, Library] = {}
        for name in sorted(wanted):
            code = wanted[name]
            lib = self.libraries.get(name)
            if lib is None or lib.code != code:
                got, regs, err = self._register(code)
                if got is None or got != name:
                    log.warning("function library %s not loaded: %s", name,
                                (err or b"name mismatch").decode("utf-8", "replace").strip())
                    continue
                lib = self._library(name, code, regs)
            clash = [f for f in lib.functions if f in functions]
            if clash:
                log.warning("function library %s not loaded: function %s already exists",
                            name, clash[0])
                continue
            libraries[name] = lib
            for fname in lib.functions:
                functions[fname] = lib
        self.libraries = libraries
        self.functions = functions
        self.pending.clear()
        return len(libraries), len(functions)

    def list_libraries(self, match: Callable[[str], bool] | None,
                       withcode: bool) -> list[Library]:
        return [lib for name, lib in sorted(self.libraries.items())
                if match is None or match(name)]


def _one_line(err: Any) -> bytes:
    text = err if isinstance(err, bytes) else str(err).encode()
    return text.replace(b"\r", b" ").replace(b"\n", b" ")
