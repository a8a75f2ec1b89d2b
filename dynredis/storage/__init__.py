"""Storage engines: the `Engine` interface and the factory the server uses."""

from __future__ import annotations

import os

from ..core.engine import Engine


def open_engine(kind: str, data_dir: str, durability: str = "buffered") -> Engine:
    """Open the engine named `kind` ("memory" or "lmdb") under `data_dir`."""
    if kind == "memory":
        from .memory import MemoryEngine

        return MemoryEngine()
    if kind == "lmdb":
        from .lmdb_engine import LmdbEngine

        path = os.path.join(data_dir, "lmdb")
        os.makedirs(path, exist_ok=True)
        return LmdbEngine(path, durability=durability)
    raise ValueError(f"unknown storage engine {kind!r} (expected 'memory' or 'lmdb')")


__all__ = ["Engine", "open_engine"]
