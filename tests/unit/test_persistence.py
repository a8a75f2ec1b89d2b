"""SAVE answers once a sync that began after it has ended (commands/persistence.py),
never on the strength of a sync already running when it came (that one may have begun
before the command's writes were committed)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dynredis.commands.persistence import ERR_FAILED, ERR_MEMORY, cmd_save
from dynredis.resp import encode as resp


class Slot:
    def __init__(self) -> None:
        self.reply: bytes | None = None

    def set(self, reply: bytes) -> None:
        self.reply = reply


class Retry:
    def __init__(self, ask: Callable[[], None]) -> None:
        self.ask = ask
        self.pending = False
        self.stopped = False

    def again(self) -> None:
        self.pending = True

    def stop(self) -> None:
        self.stopped = True


class Node:
    """An engine's sync as SAVE sees it: `running`, then ended (or failed)."""

    def __init__(self, running: bool) -> None:
        self.ended, self.failed, self.running = 3, 0, running
        self.starts = 0

    def end(self, ok: bool = True) -> None:
        self.running = False
        if ok:
            self.ended += 1
        else:
            self.failed += 1


class Ctx:
    def __init__(self, node: Node, engine: str = "lmdb") -> None:
        self.n = node
        self.engine = engine
        self.slot = Slot()
        self.retry: Retry | None = None

    def defer_blocking(self) -> Slot:
        return self.slot

    def retry_until(self, timeout_ms: int, every_ms: int, ask: Callable[[], None],
                    expired: Callable[[], None]) -> Retry:
        assert timeout_ms == 0  # (no deadline: as long as the disk takes)
        self.retry = Retry(ask)
        return self.retry

    def sync_state(self) -> tuple[int, int, bool]:
        return self.n.ended, self.n.failed, self.n.running

    def save(self, schedule: bool) -> str:
        assert not self.n.running
        self.n.running = True
        self.n.starts += 1
        return "started"

    def figures(self) -> Any:
        return type("F", (), {"engine": self.engine})()

    def tick(self) -> None:
        """The retry timer fires."""
        assert self.retry is not None and self.retry.pending
        self.retry.pending = False
        self.retry.ask()


def test_save_waits_for_its_own_sync_not_the_one_running() -> None:
    node = Node(running=True)
    c = Ctx(node)
    assert cmd_save(c, [b"SAVE"]) is None  # type: ignore[arg-type]
    node.end()  # the sync that was running when SAVE came ends: not enough
    c.tick()
    assert c.slot.reply is None and node.starts == 1 and node.running
    c.tick()
    assert c.slot.reply is None
    node.end()
    c.tick()
    assert c.slot.reply == resp.OK and c.retry is not None and c.retry.stopped


def test_save_reports_a_failed_sync() -> None:
    node = Node(running=False)
    c = Ctx(node)
    cmd_save(c, [b"SAVE"])  # type: ignore[arg-type]
    assert node.starts == 1 and c.slot.reply is None
    node.end(ok=False)
    c.tick()
    assert c.slot.reply == ERR_FAILED


def test_save_is_refused_without_a_disk() -> None:
    assert cmd_save(Ctx(Node(False), engine="memory"), [b"SAVE"]) == ERR_MEMORY  # type: ignore[arg-type]
