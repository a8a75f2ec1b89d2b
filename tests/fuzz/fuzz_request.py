"""`make fuzz`: the request parser against Redis' model under atheris (coverage-guided).

    python -m tests.fuzz.fuzz_request -runs=1000000 [-seed=N] [corpus dir ...]

Each input is built by the same structure-aware grammar the test suite draws from
(tests/fuzz/requests.py), its choices read from atheris' bytes, so mutations change the
structure (a count, a length, a terminator, where reads end) rather than only bytes. Runs
pure Python (DYNREDIS_PURE=1, set by the make target) so that coverage reaches the
parser's branches. Without atheris, the same check runs under hypothesis:

    DYNREDIS_FUZZ_EXAMPLES=1000000 python -m pytest tests/fuzz -k fuzzed
"""

from __future__ import annotations

import inspect
import sys
import time

import atheris
from atheris.instrument_bytecode import patch_code

from dynredis.resp import request
from tests.fuzz.requests import build, check


def instrument(module: object) -> None:
    """Edge coverage of the parser's own branches only: instrumenting the grammar and
    the model, or tracing every comparison, made each input several times slower. (The
    package's import hook comes before atheris', see dynredis/native.py, so the functions
    are instrumented one by one.)"""
    functions = [v for v in vars(module).values() if inspect.isfunction(v)]
    for cls in (v for v in vars(module).values() if inspect.isclass(v)):
        functions += [v for v in vars(cls).values() if inspect.isfunction(v)]
    for func in functions:
        if func.__module__ == module.__name__:  # type: ignore[attr-defined]
            func.__code__ = patch_code(func.__code__, trace_dataflow=False)


class AtherisDraw:
    def __init__(self, data: bytes) -> None:
        self.fdp = atheris.FuzzedDataProvider(data)

    def int(self, lo: int, hi: int) -> int:
        return self.fdp.ConsumeIntInRange(lo, hi)

    def bytes(self, n: int) -> bytes:
        got = self.fdp.ConsumeBytes(n)
        return got + b"\0" * (n - len(got))


_runs = 0
_started = time.monotonic()


def one_input(data: bytes) -> None:
    global _runs
    chunks, auth, max_bulk = build(AtherisDraw(data))
    check(chunks, auth, max_bulk)
    _runs += 1
    if _runs % 100_000 == 0:
        rate = _runs / (time.monotonic() - _started)
        print(f"fuzz_request: {_runs} inputs checked ({rate:.0f}/s)", flush=True)


def main() -> None:
    instrument(request)
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
