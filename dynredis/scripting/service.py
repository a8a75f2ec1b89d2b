"""A node's scripting, on the event loop's side: runs, the scripts and libraries every
node knows, BUSY and SCRIPT KILL.

A run goes: the command (commands/scripting.py) calls `run`; the Lua thread starts the
script; each redis.call comes back here (`_call`), runs through the command table
(calls.py) and its reply goes back to the Lua thread; the last reply goes to the client.
Meanwhile the client's later commands wait (`conn.hold`), so they see the script's
effects as they would in Redis. Other clients are not held: a script is not isolated
from them (README).

Scripts loaded with SCRIPT LOAD and function libraries are kept in the cluster's
registry (cluster/registry.py), so every node has them; a script sent with EVAL is
remembered by this node only (the last EVALED_MAX of them), as Redis 7.4 does, and only
once it compiled (as Redis: EVALSHA of code that did not compile answers NOSCRIPT).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from ..cluster.registry import Registry
from ..commands.databases import storage_key
from ..resp import encode as resp
from ..server.streamed import STREAM_SLICE, bytes_reply
from . import calls
from .luaengine import KILLED, LuaEngine, Run, nothing
from .worker import LuaWorker

log = logging.getLogger("dynredis.scripts")

EVALED_MAX = 500
BUSY_MS = 5000  # busy-reply-threshold (lua-time-limit), Redis' default
ERR_NOTBUSY = b"-NOTBUSY No scripts in execution right now.\r\n"
ERR_UNKILLABLE = (b"-UNKILLABLE Sorry the script already executed write commands against the "
                  b"dataset. You can either wait the script termination or kill the server "
                  b"in a hard way using the SHUTDOWN NOSAVE command.\r\n")
BUSY_SCRIPT = (b"-BUSY Redis is busy running a script. You can only call SCRIPT KILL or "
               b"SHUTDOWN NOSAVE.\r\n")
BUSY_FUNCTION = (b"-BUSY Redis is busy running a script. You can only call FUNCTION KILL or "
                 b"SHUTDOWN NOSAVE.\r\n")
ERR_INTERNAL = b"-ERR internal error running the script\r\n"


def sha1hex(body: bytes) -> str:
    return hashlib.sha1(body).hexdigest()


class Scripts:
    def __init__(self, server: Any, threaded: bool = True) -> None:
        from ..commands.server import REDIS_VERSION

        self.server = server
        self.node = server.node
        self.registry = Registry(server.node)
        self.registry.on_change = self._registry_changed
        self.evaled: OrderedDict[str, bytes] = OrderedDict()
        self.runs: dict[int, Run] = {}
        self._ids = 0
        self.busy_ms = BUSY_MS
        self.libraries = 0
        self.functions = 0
        self.calls = 0  # redis.call / pcall run for scripts (INFO)
        self.worker = LuaWorker(lambda: LuaEngine(REDIS_VERSION), threaded)
        self._sync_libraries()

    # --- between the threads ----------------------------------------------------------------

    def _post(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run `fn(*args)` on the event loop (called from the Lua thread)."""
        loop = self.server.loop
        if self.worker.threaded and loop is not None:
            try:
                loop.call_soon_threadsafe(self._on_loop, fn, args)
            except RuntimeError:
                # The loop closed (the node stopped) while the job ran: nobody is left
                # to take its result. Checked by catching, not by loop.is_closed() first:
                # the loop may close between the two.
                if not loop.is_closed():
                    raise
        else:
            fn(*args)

    def _on_loop(self, fn: Callable[..., Any], args: tuple) -> None:
        server = self.server
        trace = server.trace  # timed as "script": a redis.call run, a script's reply
        started = 0 if trace is None else trace.begin()
        server.set_now()
        try:
            fn(*args)
        except Exception:
            log.exception("scripting callback failed")
        server.pump()
        if trace is not None:
            trace.took("script", started)

    def stop(self) -> None:
        """The node stops: running scripts are ended (even those that wrote, as
        SHUTDOWN NOSAVE ends them in Redis) and the Lua thread with them."""
        for r in self.runs.values():
            r.killed = True
        self.worker.stop()

    # --- scripts ------------------------------------------------------------------------------

    def body_of(self, sha: str) -> bytes | None:
        body = self.evaled.get(sha)
        if body is not None:
            self.evaled.move_to_end(sha)
            return body
        return self.registry.get("s:" + sha)

    def remember(self, sha: str, body: bytes) -> None:
        """An EVAL'd script that compiled: EVALSHA on this node finds it afterwards."""
        if sha in self.evaled:
            self.evaled.move_to_end(sha)
            return
        self.evaled[sha] = body
        if len(self.evaled) > EVALED_MAX:
            self.evaled.popitem(last=False)

    def exists(self, sha: str) -> bool:
        return sha in self.evaled or self.registry.get("s:" + sha) is not None

    def load(self, sha: str, body: bytes, done: Callable[[Any], Any]) -> None:
        """SCRIPT LOAD: into the registry (every node), `done` once they have it."""
        if self.registry.get("s:" + sha) is not None:
            done(None)
            return
        self.registry.put("s:" + sha, body, done)

    def flush_scripts(self, done: Callable[[Any], Any]) -> None:
        self.evaled.clear()
        self.worker.submit(lambda e: e.forget_scripts())
        self.registry.flush("s", done)

    def run(self, conn: Any, kind: str, name: str, body: bytes | None, keys: list[bytes],
            args: list[bytes], readonly: bool, no_writes: bool, command: str,
            remember: bool = False) -> None:
        """Start a script (kind "script", name its SHA1) or function; the reply goes to a
        slot of `conn`, whose later commands wait for it. `remember`: an EVAL'd script,
        remembered once it compiled."""
        slot = conn.defer()
        r = Run(kind, name, keys, args, conn.proto, readonly)
        r.no_writes = readonly or no_writes
        r.body = body
        r.conn = conn
        r.slot = slot
        r.command = command
        r.db = conn.db
        self._ids += 1
        r.id = self._ids
        self.runs[r.id] = r
        r.on_call = lambda k, p, a: self._post(self._call, r, k, p, a)
        r.on_done = lambda reply: self._post(self._done, r, reply, remember)
        conn.hold()

        def start(engine: LuaEngine) -> None:
            if r.killed:
                r.on_done(KILLED)
                return
            try:
                engine.start(r)
            except Exception:
                log.exception("starting a script failed")
                r.on_done(ERR_INTERNAL)

        gate = getattr(conn, "gate", None)
        if not keys or gate is None:
            self.worker.submit(start)
            return
        # The gates of the keys as stored: those the script's commands pass.
        keys = [storage_key(r.db, k) for k in keys]

        def entered(leave: Callable[[], None]) -> None:
            # the script holds its keys' gates until its reply (commands/gate.py)
            r.gated = keys
            r.leave = leave
            self.worker.submit(start)

        gate.enter_all(keys, None, entered)

    def _call(self, r: Run, kind: bytes, proto: int, args: list[bytes]) -> None:
        self.calls += 1

        def answered(reply: Any) -> None:  # bytes, or a list of parts (LuaEngine.resume)
            def resume(engine: LuaEngine) -> None:
                try:
                    engine.resume(r, reply)
                except Exception:
                    log.exception("resuming a script failed")
                    r.on_done(ERR_INTERNAL)

            self.worker.submit(resume)

        if kind == b"a":
            answered(calls.acl_check(r, args))
            return
        calls.execute(r, args, proto, self.server.loading, answered)

    def _done(self, r: Run, reply: bytes, remember: bool = False) -> None:
        self.runs.pop(r.id, None)
        if remember and r.compiled and r.body is not None:
            self.remember(r.name, r.body)
        r.leave()
        # Its callbacks name the run itself (a reference cycle): let go of them, so that
        # the run and what it held go when the last reference does, not when the cyclic
        # collector next runs (dozens of calls later in a node doing little else).
        r.leave = r.on_call = r.on_done = nothing
        # a long reply (a script's return of a million elements) is written over turns
        if len(reply) <= STREAM_SLICE or not r.conn.send_streamed(r.slot, bytes_reply(reply)):
            r.slot.set(reply)
        r.conn.release_hold()

    # --- BUSY and SCRIPT KILL ---------------------------------------------------------------------

    def executing(self) -> tuple[Run | None, float]:
        """The run the Lua thread is executing and for how long (seconds)."""
        engine = self.worker.engine
        if engine is None:
            return None, 0.0
        current, since = engine.current, engine.since
        if current is None:
            return None, 0.0
        return current, time.monotonic() - since

    def tick(self) -> None:
        """Is a script over busy-reply-threshold? Then other commands get BUSY."""
        current, running = self.executing()
        busy = current if current is not None and running * 1000 >= self.busy_ms else None
        self.server.script_busy = busy

    def busy_reply(self, args: list[bytes]) -> bytes | None:
        """BUSY for a command while a script is busy, unless Redis allows it then."""
        busy = self.server.script_busy
        if busy is None:
            return None
        current, _ = self.executing()
        if current is not busy:  # it ended (or reached a redis.call) since the last tick
            self.server.script_busy = None
            return None
        cmd, sub = calls.resolve(args)
        if cmd is not None and "allow_busy" in calls.flags_of(cmd, sub):
            return None
        return BUSY_FUNCTION if current.kind == "function" else BUSY_SCRIPT

    def _target(self) -> Run | None:
        current, _ = self.executing()
        if current is not None:
            return current
        return self.runs[min(self.runs)] if self.runs else None

    def kill(self, is_eval: bool) -> bytes:
        r = self._target()
        if r is None:
            return ERR_NOTBUSY
        if r.wrote:
            return ERR_UNKILLABLE
        if is_eval and r.kind == "function":
            return BUSY_FUNCTION
        if not is_eval and r.kind == "script":
            return BUSY_SCRIPT
        r.killed = True
        return resp.OK

    def running_function(self) -> Run | None:
        r = self._target()
        return r if r is not None and r.kind == "function" else None

    # --- function libraries ---------------------------------------------------------------------

    def libraries_code(self) -> dict[str, bytes]:
        return self.registry.live("f")

    def _sync_libraries(self) -> None:
        wanted = self.libraries_code()

        def sync(engine: LuaEngine) -> None:
            counts = engine.sync(wanted)
            self._post(self._synced, counts)

        self.worker.submit(sync)

    def _synced(self, counts: tuple[int, int]) -> None:
        self.libraries, self.functions = counts

    def _registry_changed(self, names: set[str]) -> None:
        if any(n.startswith("f") for n in names):
            self._sync_libraries()
        if "s*" in names:
            self.evaled.clear()
            self.worker.submit(lambda e: e.forget_scripts())

    def in_lua(self, job: Callable[[LuaEngine], Any], done: Callable[[Any], None]) -> None:
        """Run `job` in the Lua thread; `done(its result)` back on the loop."""

        def run(engine: LuaEngine) -> None:
            try:
                result = job(engine)
            except Exception:
                log.exception("a scripting job failed")
                result = None
            self._post(done, result)

        self.worker.submit(run)
