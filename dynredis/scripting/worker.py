"""The Lua thread: where scripts run, so that a long one never stops the node's loop.

Every script of a node runs in one Lua state, in one thread of its own, as a coroutine
that stops at each redis.call; the node's event loop runs the command and hands the
reply back. Lua runs without the GIL (lupa releases it), so a script that computes for
seconds leaves the node serving its other clients, and they can be told BUSY and send
SCRIPT KILL, as Redis allows. Jobs (`job(engine)`) run in the order they were
submitted.

`threaded=False` runs each job in the caller's thread instead (tests): jobs submitted
while one runs wait for it, so a script that calls many commands does not recurse.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

log = logging.getLogger("dynredis.scripts")

Job = Callable[[Any], None]


class LuaWorker:
    def __init__(self, factory: Callable[[], Any], threaded: bool = True) -> None:
        self.threaded = threaded
        self.engine: Any = None
        self._queue: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._jobs: deque[Job] = deque()
        self._draining = False
        self._thread: threading.Thread | None = None
        if threaded:
            ready = threading.Event()
            failed: list[BaseException] = []

            def run() -> None:
                try:
                    self.engine = factory()
                except BaseException as exc:  # reported to the constructor
                    failed.append(exc)
                    ready.set()
                    return
                ready.set()
                self._loop()

            self._thread = threading.Thread(target=run, name="dynredis-lua", daemon=True)
            self._thread.start()
            ready.wait()
            if failed:
                raise failed[0]
        else:
            self.engine = factory()

    def submit(self, job: Job) -> None:
        if self.threaded:
            self._queue.put(job)
            return
        self._jobs.append(job)
        if self._draining:
            return
        self._draining = True
        try:
            while self._jobs:
                self._run(self._jobs.popleft())
        finally:
            self._draining = False

    def _loop(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            self._run(job)
            # Not held while waiting for the next job: a resume holds its redis.call's
            # reply (a million-field HGETALL's parts: tens of MB kept until the next call).
            del job

    def _run(self, job: Job) -> None:
        try:
            job(self.engine)
        except Exception:
            log.exception("a scripting job failed")

    def stop(self) -> None:
        """Let the thread end after the jobs already queued (not waited for: it is a
        daemon thread, and a script it runs ends at its next hook once killed)."""
        if self._thread is not None:
            self._queue.put(None)
