"""The code base stays ruff-clean and mypy-clean (the project's style gate runs with the
tests): the compiled build trusts the type hints, so a wrong one is a bug waiting."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _tool(name: str) -> str:
    return shutil.which(name) or str(Path(sys.executable).parent / name)


def test_ruff_clean() -> None:
    proc = subprocess.run([_tool("ruff"), "check", "dynredis", "tests", "bench", "compat"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_mypy_clean(tmp_path: Path) -> None:
    """Every module of the package type-checks (pyproject's [tool.mypy] settings); a
    cache of its own, so a stale one of the checkout decides nothing."""
    proc = subprocess.run([_tool("mypy"), "--cache-dir", str(tmp_path / "cache"), "dynredis"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
