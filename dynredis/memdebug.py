"""A debugging aid for memory that grows: what a running node holds, dumped on a signal.

With $DYNREDIS_MEMDEBUG set to a file path, `dynredis node` installs a SIGUSR2
handler; each signal appends a report to that file: the process's RSS; the objects in
reference cycles nobody reaches (what only Python's cyclic collector frees, which in a
node doing little else runs a full collection only every few dozen commands), by type
and closure name, with the bytes they held, then freed; the live objects by type;
malloc's figures; the Lua state's size; and with $DYNREDIS_TRACEMALLOC=N (frames kept, 1
is enough for most) the source lines holding the most memory. Nothing of this runs
unless the variable is set. It found the closures that kept every script's HGETALL
reply (+40 MB a call on a million fields).

    DYNREDIS_MEMDEBUG=/tmp/node.mem dynredis cluster ...; kill -USR2 <pid>
"""

from __future__ import annotations

import ctypes
import gc
import os
import signal
import sys
import threading
import time
import tracemalloc
import types
from collections import Counter
from collections.abc import Callable
from typing import Any

ENV_FILE = "DYNREDIS_MEMDEBUG"
ENV_TRACE = "DYNREDIS_TRACEMALLOC"
TOP = 25


def rss_kb(pid: int | str = "self") -> int:
    """Resident set size of a process, in KiB (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def type_counts() -> Counter[str]:
    """Objects the cyclic collector tracks, by type name."""
    return Counter(type(o).__name__ for o in gc.get_objects())


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]


def malloc_figures() -> dict[str, int]:
    """glibc's malloc, over all its arenas: bytes it took from the system (`arena`,
    `mmapped`), handed out (`in use`) and holds free; {} where it is not glibc's."""
    try:
        fn = ctypes.CDLL(None).mallinfo2
    except (OSError, AttributeError):
        return {}
    fn.restype = _Mallinfo2
    m = fn()
    return {"arena": m.arena, "mmapped": m.hblkhd, "in use": m.uordblks + m.hblkhd,
            "free": m.fordblks}


def _name(obj: Any) -> str:
    """A garbage object's type, and a function's qualified name (which closure)."""
    kind = type(obj).__name__
    if isinstance(obj, types.FunctionType):
        return f"{kind} {obj.__qualname__}"
    return kind


def _owned_bytes(obj: Any) -> int:
    """Bytes of the untracked objects (bytes, str...) a container refers to directly:
    what it keeps alive that the collector's counts do not show."""
    return sum(sys.getsizeof(r) for r in gc.get_referents(obj) if not gc.is_tracked(r))


def cyclic_garbage() -> tuple[Counter[str], int]:
    """Collect everything, keeping what only the cyclic collector could free: those
    objects by type (closures by name), and the bytes they held; then free them."""
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        gc.collect()
        found = list(gc.garbage)
        gc.garbage.clear()
    finally:
        gc.set_debug(0)
    names = Counter(_name(o) for o in found)
    held = sum(_owned_bytes(o) for o in found)
    del found
    gc.collect()
    return names, held


def report(lua_kb: Callable[[], float | None] | None = None) -> str:
    """The report one signal appends (see the module's docstring)."""
    lines = [f"=== {time.strftime('%H:%M:%S')} pid {os.getpid()} rss {rss_kb() // 1024} MB"]
    if tracemalloc.is_tracing():
        traced = tracemalloc.get_traced_memory()[0]
        lines.append(f"tracemalloc: {traced // 1024 // 1024} MB held by Python allocations "
                     "before a collection")
    gc.disable()  # no automatic collection between the counts and the saved collection
    try:
        before = type_counts()
        garbage, held = cyclic_garbage()
    finally:
        gc.enable()
    lines.append(f"gc: {sum(before.values())} tracked objects, {sum(garbage.values())} "
                 f"in cycles nobody reaches, holding {held // 1024 // 1024} MB of bytes/str; "
                 f"rss after freeing them {rss_kb() // 1024} MB")
    for name, n in garbage.most_common(TOP):
        lines.append(f"  {n:>10} {name}")
    lines.append("live objects by type:")
    for name, n in type_counts().most_common(TOP):
        lines.append(f"  {n:>10} {name}")
    heap = malloc_figures()
    if heap:
        lines.append("malloc: " + ", ".join(f"{k} {v // 1024 // 1024} MB" for k, v in heap.items()))
    if lua_kb is not None:
        kb = lua_kb()
        lines.append("lua: " + ("busy (a script is running)" if kb is None
                                else f"{kb / 1024:.1f} MB after a full collection"))
    if tracemalloc.is_tracing():
        stats = tracemalloc.take_snapshot().statistics("lineno")
        lines.append(f"tracemalloc after: {sum(s.size for s in stats) // 1024 // 1024} MB")
        for s in stats[:TOP]:
            lines.append(f"  {s.size // 1024:>10} KiB {s.count:>9} blocks  {s.traceback}")
    return "\n".join(lines) + "\n"


def install(server: Any = None) -> bool:
    """Start tracing and install the SIGUSR2 handler if $DYNREDIS_MEMDEBUG asks; False
    if it does not. `server` (a NodeServer) lets the report measure its Lua state."""
    path = os.environ.get(ENV_FILE)
    if not path:
        return False
    frames = int(os.environ.get(ENV_TRACE) or 0)
    if frames > 0:
        tracemalloc.start(frames)

    def lua_kb() -> float | None:
        scripts = getattr(server, "scripts", None)
        return None if scripts is None else lua_memory(scripts.worker)

    def on_signal(signum: int, frame: Any) -> None:
        text = report(lua_kb if server is not None else None)
        with open(path, "a") as f:
            f.write(text)

    signal.signal(signal.SIGUSR2, on_signal)
    return True


def lua_memory(worker: Any, timeout: float = 5.0) -> float | None:
    """The Lua state's size in KiB after a full collection, measured in its own thread
    (None if it did not answer within `timeout`: a script is running)."""
    done = threading.Event()
    out: list[float] = []

    def job(engine: Any) -> None:
        collect = engine.lua.globals().collectgarbage
        collect(b"collect")
        out.append(float(collect(b"count")))
        done.set()

    worker.submit(job)
    if not worker.threaded:
        return out[0] if out else None
    return out[0] if done.wait(timeout) and out else None
