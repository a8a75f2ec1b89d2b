"""Which modules run compiled, and the guard that never lets a stale build run.

The request path (parsing, command dispatch, the node's quorum state machines,
clocks, placement, local storage) is compiled with mypyc at install time
(`setup.py`): the same source, run as C extension modules. A node's CPU per request
is dominated by interpreter overhead on this path (about 60 Python calls per SET),
which compiled calls and attribute access remove.

The extension modules sit next to their sources, and Python imports an extension in
preference to a source file. So an edit to a compiled module's source would silently
not run until the next build. To prevent that, the build records a digest of every
compiled module's source (`write_manifest`), and the package's `__init__` calls
`choose()` before any submodule is imported: if any source differs from what was
compiled, or nothing was compiled, or DYNREDIS_PURE=1, every module is imported from
its source instead (all or nothing: compiled modules call each other directly).
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from types import ModuleType

COMPILED_MODULES: tuple[str, ...] = (
    "dynredis.core.antientropy",
    "dynredis.core.attrs",
    "dynredis.core.clock",
    "dynredis.core.collcoord",
    "dynredis.core.collstore",
    "dynredis.core.collstrip",
    "dynredis.core.collsync",
    "dynredis.core.collview",
    "dynredis.core.collwrite",
    "dynredis.core.config",
    "dynredis.core.counter",
    "dynredis.core.dotset",
    "dynredis.core.driver",
    "dynredis.core.elements",
    "dynredis.core.failure_detector",
    "dynredis.core.forward",
    "dynredis.core.graveyard",
    "dynredis.core.handoff",
    "dynredis.core.header",
    "dynredis.core.hints",
    "dynredis.core.hlc",
    "dynredis.core.identity",
    "dynredis.core.inflight",
    "dynredis.core.keycounts",
    "dynredis.core.keyslot",
    "dynredis.core.listpos",
    "dynredis.core.localstore",
    "dynredis.core.membership",
    "dynredis.core.merkle",
    "dynredis.core.messages",
    "dynredis.core.node",
    "dynredis.core.obj",
    "dynredis.core.probes",
    "dynredis.core.quorum",
    "dynredis.core.reads",
    "dynredis.core.reaper",
    "dynredis.core.records",
    "dynredis.core.recent",
    "dynredis.core.replica",
    "dynredis.core.ring",
    "dynredis.core.scanorder",
    "dynredis.core.score",
    "dynredis.core.shape",
    "dynredis.core.writes",
    "dynredis.server.app",
    "dynredis.server.limits",
    "dynredis.server.client",
    "dynredis.server.peers",
    "dynredis.server.wire",
    "dynredis.resp.encode",
    "dynredis.resp.request",
    "dynredis.commands.callstats",
    "dynredis.commands.collection",
    "dynredis.commands.gate",
    "dynredis.commands.hashes",
    "dynredis.commands.lists",
    "dynredis.commands.sets",
    "dynredis.commands.transactions",
    "dynredis.commands.zsets",
    "dynredis.commands.common",
    "dynredis.commands.counters",
    "dynredis.commands.databases",
    "dynredis.commands.keys",
    "dynredis.commands.strings",
    "dynredis.commands.table",
    "dynredis.storage.lmdb_engine",
    "dynredis.storage.keyfilter",
    "dynredis.cluster.affinity",
)

# Extension modules written in C (dynredis/csrc/), built with the compiled modules: each is
# imported by a module that falls back to Python without it (a pure run blocks them).
C_HELPERS: dict[str, str] = {
    "dynredis._treefold": "treefold.c",  # core/merkle.py's MerkleTree.fold
    "dynredis._bitop": "bitop.c",  # commands/bitops.py's bitop
    "dynredis._weightorder": "weightorder.c",  # commands/sortcmd.py's _by_weight
    "dynredis._globmatch": "globmatch.c",  # commands/glob.py's stringmatch
    "dynredis._randpick": "randpick.c",  # commands/sets.py's distinct_indexes
    "dynredis._peerframe": "peerframe.c",  # server/wire.py's encode and unframe, obj.py's
    # packed, unpacked and plain_value
    "dynredis._keyslot": "keyslot.c",  # core/keyslot.py's key_slot
    "dynredis._geoscan": "geoscan.c",  # commands/geosearch.py's find (its inner loop)
    "dynredis._distsort": "distsort.c",  # commands/geosearch.py's _c_order
}

PACKAGE = "dynredis"
PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
MANIFEST_NAME = "native-manifest.json"
PURE_ENV = "DYNREDIS_PURE"
_SHARED_LIB = "_native__mypyc"  # mypyc's runtime for the group (setup.py group_name)

_UNCHECKED = "pure (not checked)"
# What this process runs: "compiled", or "pure (<why>)". Set by `choose()`.
state = _UNCHECKED


def source_path(module: str) -> str:
    if module in C_HELPERS:
        return os.path.join(PACKAGE_DIR, "csrc", C_HELPERS[module])
    parts = module.split(".")[1:]
    return os.path.join(PACKAGE_DIR, *parts) + ".py"


def _digest(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def source_digests() -> dict[str, str]:
    """The digest of every compiled module's source, as it is now."""
    return {m: _digest(source_path(m)) for m in (*COMPILED_MODULES, *C_HELPERS)}


def write_manifest(path: str, digests: dict[str, str]) -> None:
    """Record the sources just compiled (the build calls this after it succeeded)."""
    with open(path, "w") as f:
        json.dump(digests, f, indent=1, sort_keys=True)


def extension_modules() -> set[str]:
    """Modules of the package that have an extension file next to their source."""
    found: set[str] = set()
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    for root, dirs, files in os.walk(PACKAGE_DIR):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        rel = os.path.relpath(root, PACKAGE_DIR)
        prefix = PACKAGE if rel == "." else PACKAGE + "." + rel.replace(os.sep, ".")
        for name in files:
            for suffix in suffixes:
                if name.endswith(suffix):
                    stem = name[: -len(suffix)]
                    if stem != _SHARED_LIB:
                        found.add(f"{prefix}.{stem}")
                    break
    return found


def why_pure() -> str | None:
    """None if the compiled modules may run, else the reason they may not (no ',' or
    '=': it is shown in INFO, which clients split on those)."""
    if os.environ.get(PURE_ENV) == "1":
        return f"{PURE_ENV} set"
    built = extension_modules()
    if not built:
        return "not compiled"
    if built != set(COMPILED_MODULES) | set(C_HELPERS):
        odd = sorted(built ^ (set(COMPILED_MODULES) | set(C_HELPERS)))
        return f"stale build: compiled modules differ from the list ({' '.join(odd)})"
    try:
        with open(os.path.join(PACKAGE_DIR, MANIFEST_NAME)) as f:
            recorded = json.load(f)
    except (OSError, ValueError):
        return "no build manifest (the last build did not finish)"
    for m, digest in source_digests().items():
        if recorded.get(m) != digest:
            return f"stale build: {m} changed since it was compiled"
    return None


class _SourceFinder(importlib.abc.MetaPathFinder):
    """Imports the compiled modules from their .py files, ahead of any extension."""

    def __init__(self, modules: Sequence[str]) -> None:
        self.modules = frozenset(modules)

    def find_spec(self, fullname: str, path: object = None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in self.modules:
            return None
        return importlib.util.spec_from_file_location(fullname, source_path(fullname))


def choose() -> str:
    """Decide, once per process, whether the compiled modules run; returns `state`."""
    global state
    if state != _UNCHECKED:
        return state
    reason = why_pure()
    if reason is None:
        state = "compiled"
    else:
        state = f"pure ({reason})"
        modules = [m for m in extension_modules() | set(COMPILED_MODULES)
                   if m not in C_HELPERS and os.path.exists(source_path(m))]
        sys.meta_path.insert(0, _SourceFinder(modules))
        for helper in C_HELPERS:
            sys.modules[helper] = None  # type: ignore[assignment]  # import: ImportError
    return state


def running() -> str:
    """What actually runs: "compiled" only if every compiled module imported so far came
    from its extension (modules not needed yet, e.g. an unused engine, are not loaded)."""
    loaded = [sys.modules[m] for m in COMPILED_MODULES if m in sys.modules]
    if state == "compiled" and all(not (m.__file__ or "").endswith(".py") for m in loaded):
        return "compiled"
    return state
