"""Layers point one way: the core imports no outer layer, does no I/O and speaks no Redis.

Read from the sources (ast), so an import hidden in a function counts too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[2] / "dynredis" / "core"
OUTER = ("storage", "server", "commands", "resp", "cli", "cluster")
# What the core may not reach for: I/O, time, concurrency (the driver's business).
NO_IO = ("asyncio", "socket", "time", "datetime", "threading", "subprocess", "select",
         "selectors", "os", "io", "logging", "signal", "ssl", "lmdb", "hiredis")
SOURCES = sorted(CORE.glob("*.py"))


def imports(path: Path) -> list[str]:
    """Every module `path` imports, as absolute dotted names."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                found.append(node.module or "")
            else:
                base = ["dynredis", "core"][: 3 - node.level]
                found.append(".".join(base + ([node.module] if node.module else [])))
    return found


@pytest.mark.parametrize("path", SOURCES, ids=[p.name for p in SOURCES])
def test_core_imports_nothing_from_an_outer_layer(path: Path) -> None:
    for name in imports(path):
        parts = name.split(".")
        assert not (parts[0] == "dynredis" and len(parts) > 1 and parts[1] in OUTER), \
            f"{path.name} imports {name}"
        assert parts[0] not in NO_IO, f"{path.name} imports {name}"


@pytest.mark.parametrize("path", SOURCES, ids=[p.name for p in SOURCES])
def test_core_speaks_no_redis(path: Path) -> None:
    """No Redis error texts: the Redis face words the core's reasons."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            for word in ("ERR ", "WRONGTYPE", "NOAUTH", "MOVED "):
                assert not node.value.startswith(word), f"{path.name}: {node.value!r}"


def test_the_check_sees_an_outer_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from ..storage.memory import MemoryEngine\nimport time\n")
    assert imports(bad) == ["dynredis.storage.memory", "time"]
