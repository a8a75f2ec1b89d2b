"""The compiled build (dynredis/native.py): what runs, and that a stale build never does.

Each check imports dynredis in a fresh interpreter, because the choice between compiled
and source modules is made once per process, before any submodule is imported.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import dynredis
from dynredis import native

PACKAGE = Path(dynredis.__file__).parent

PROBE = """
import json, sys
import dynredis.native as n
import dynredis.server.app, dynredis.storage.lmdb_engine  # every compiled module
mods = {m: sys.modules[m].__file__ for m in n.COMPILED_MODULES}
import dynredis.core.merkle as merkle
import dynredis.commands.bitops as bitops
print(json.dumps({"state": n.state, "running": n.running(), "files": mods,
                  "extra": getattr(sys.modules["dynredis.core.hlc"], "EDITED", None),
                  "c_fold": merkle._native_fold is not None,
                  "c_bitop": bitops._native_bitop is not None}))
"""


def probe(package_parent: Path, **env: str) -> dict:
    """Import dynredis from `package_parent` in a new interpreter; what did it load?"""
    run_env = {k: v for k, v in os.environ.items() if k != native.PURE_ENV}
    run_env.update(env, PYTHONPATH=str(package_parent))
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                         env=run_env, cwd=package_parent, timeout=60, check=True)
    return json.loads(out.stdout)


def from_source(files: dict[str, str]) -> bool:
    return all(f.endswith(".py") for f in files.values())


def copy_package(tmp_path: Path) -> Path:
    """A copy of the installed package, compiled modules, build manifest and all."""
    shutil.copytree(PACKAGE, tmp_path / "dynredis",
                    ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def test_the_suite_runs_the_build_users_get() -> None:
    """`make test` compiles before testing, so every other test exercised compiled code
    (unless DYNREDIS_PURE=1 asked for pure Python)."""
    got = probe(PACKAGE.parent)
    if os.environ.get(native.PURE_ENV) == "1":
        assert from_source(got["files"])
    else:
        assert native.why_pure() is None, native.why_pure()
        assert got["state"] == got["running"] == "compiled"
        assert not any(f.endswith(".py") for f in got["files"].values())
        assert got["c_fold"] and got["c_bitop"]  # the C helpers: built with them


def test_an_edited_source_runs_instead_of_its_stale_compiled_module(tmp_path: Path) -> None:
    root = copy_package(tmp_path)
    hlc = root / "dynredis" / "core" / "hlc.py"
    hlc.write_text(hlc.read_text() + "\nEDITED = 'yes'\n")
    got = probe(root)
    assert got["extra"] == "yes"  # the edit runs
    assert from_source(got["files"])  # all or nothing: no compiled module either
    assert not got["c_fold"] and not got["c_bitop"]
    assert got["state"].startswith("pure (")
    if native.extension_modules():
        assert "stale build: dynredis.core.hlc changed" in got["state"]


def test_a_build_that_did_not_finish_is_not_used(tmp_path: Path) -> None:
    root = copy_package(tmp_path)
    (root / "dynredis" / native.MANIFEST_NAME).unlink(missing_ok=True)
    got = probe(root)
    assert from_source(got["files"])
    assert got["state"].startswith("pure (")


def test_a_manifest_from_other_sources_is_not_trusted(tmp_path: Path) -> None:
    root = copy_package(tmp_path)
    manifest = root / "dynredis" / native.MANIFEST_NAME
    recorded = {m: "0" * 64 for m in native.COMPILED_MODULES}
    manifest.write_text(json.dumps(recorded))
    got = probe(root)
    assert from_source(got["files"])


def test_pure_env_runs_the_sources() -> None:
    got = probe(PACKAGE.parent, **{native.PURE_ENV: "1"})
    assert from_source(got["files"])
    assert got["state"] == got["running"] == f"pure ({native.PURE_ENV} set)"
    assert not got["c_fold"]  # pure means the C helpers too (their Python stands in)
