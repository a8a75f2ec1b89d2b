"""DYNREDIS_MEMDEBUG (dynredis/memdebug.py): a node's memory report on SIGUSR2 names what
only the cyclic collector would free, and how much it held; off without the variable."""

from __future__ import annotations

import gc
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dynredis import memdebug
from dynredis.scripting.luaengine import LuaEngine
from dynredis.scripting.worker import LuaWorker


@pytest.fixture
def usr2() -> Iterator[None]:
    """SIGUSR2's handler as it was, after the test."""
    before = signal.getsignal(signal.SIGUSR2)
    try:
        yield
    finally:
        signal.signal(signal.SIGUSR2, before)


def leave_a_cycle(size: int) -> None:
    """A closure that names itself, holding `size` bytes: garbage only the cyclic
    collector frees."""
    data = b"x" * size

    def holder() -> Callable[[], object]:
        return holder if data else holder

    holder()


def test_without_the_variable_nothing_is_installed(monkeypatch: pytest.MonkeyPatch,
                                                   usr2: None) -> None:
    monkeypatch.delenv(memdebug.ENV_FILE, raising=False)
    before = signal.getsignal(signal.SIGUSR2)
    assert memdebug.install() is False
    assert signal.getsignal(signal.SIGUSR2) is before


def test_a_signal_appends_a_report_naming_the_cycles_and_what_they_held(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, usr2: None) -> None:
    out = tmp_path / "mem.txt"
    monkeypatch.setenv(memdebug.ENV_FILE, str(out))
    monkeypatch.delenv(memdebug.ENV_TRACE, raising=False)
    assert memdebug.install() is True
    gc.collect()  # (earlier tests' garbage: the report would list it first)
    gc.disable()
    try:
        leave_a_cycle(3 << 20)
        os.kill(os.getpid(), signal.SIGUSR2)  # (the handler runs at once, in this thread)
    finally:
        gc.enable()
    first = out.read_text()
    assert f"pid {os.getpid()} rss " in first
    assert "holding 3 MB of bytes/str" in first
    assert "function leave_a_cycle.<locals>.holder" in first
    assert "live objects by type:" in first
    os.kill(os.getpid(), signal.SIGUSR2)  # the cycle was freed by the first report
    second = out.read_text()[len(first):]
    assert second.startswith("=== ") and "holding 0 MB" in second
    assert "holder" not in second


def test_the_lua_states_size_is_measured_in_its_thread() -> None:
    for threaded in (False, True):
        worker = LuaWorker(LuaEngine, threaded)
        try:
            kb = memdebug.lua_memory(worker)
            assert kb is not None and 10 < kb < 10_000
        finally:
            worker.stop()
            if worker._thread is not None:  # gone before the next test counts garbage
                worker._thread.join(10)
            del worker
            gc.collect()
