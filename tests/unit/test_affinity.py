"""Key affinity's hand-over (cluster/affinity.py): when a command handed to its key's
node fails for want of an answer."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from dynredis.cluster.affinity import WAIT_MS, Affinity

TARGET = "10.0.0.2:7000"
GONE = b"-ERR the node coordinating this key (10.0.0.2:7000) did not answer"


class _Node:
    """What the hand-over asks of a node: the time, how it sees the target."""

    def __init__(self) -> None:
        self.now = 1_000_000
        self.cfg = SimpleNamespace(timeout_ms=2000)
        self.status = "up"
        self.lost = False
        self.sent: list[tuple[str, tuple]] = []

    def register(self, kind: str, handler: Any) -> None:
        pass

    def member_status(self, peer: str) -> str:
        return self.status

    def link_lost(self, peer: str) -> bool:
        return self.lost

    def send(self, peer: str, msg: tuple) -> None:
        self.sent.append((peer, msg))


class _Conn:
    user, proto, r, w, db = "default", 2, None, None, 0

    def __init__(self) -> None:
        self.replies: list[bytes] = []
        self.held = 0

    def defer(self) -> Any:
        return SimpleNamespace(set=self.replies.append)

    def hold(self) -> None:
        self.held += 1

    def release_hold(self) -> None:
        self.held -= 1


def _handed(node: _Node) -> tuple[Affinity, _Conn]:
    aff = Affinity(node, lambda *a: None)
    conn = _Conn()
    aff.send(conn, TARGET, "setrange", [b"setrange", b"k", b"104857599", b"x"])
    return aff, conn


def _after(node: _Node, aff: Affinity, ms: int) -> None:
    for _ in range(ms // 100):
        node.now += 100
        aff.tick()


def test_a_target_busy_for_a_while_still_answers_the_command() -> None:
    """A target counted down by the detector (its heartbeats late: busy writing a 100 MB
    value) but still linked gets the request timeout to answer: its late answer is the
    reply, not "may or may not have run"."""
    node = _Node()
    aff, conn = _handed(node)
    node.status = "down"
    _after(node, aff, 1500)
    assert conn.replies == []
    node.status = "up"
    _after(node, aff, 3000)  # (down again later: the count starts afresh)
    node.status = "down"
    _after(node, aff, 1500)
    reqid = node.sent[0][1][1]
    aff._on_answer(TARGET, ("afa", reqid, b"$-1\r\n"))
    assert conn.replies == [b"$-1\r\n"] and conn.held == 0


def test_a_target_down_past_the_timeout_or_unlinked_fails_the_command() -> None:
    node = _Node()
    aff, conn = _handed(node)
    node.status = "down"
    _after(node, aff, 1900)
    assert conn.replies == []
    _after(node, aff, 200)
    assert len(conn.replies) == 1 and conn.replies[0].startswith(GONE)
    node = _Node()
    aff, conn = _handed(node)
    node.status, node.lost = "down", True  # its link lost: at once
    _after(node, aff, 100)
    assert len(conn.replies) == 1 and conn.replies[0].startswith(GONE) and conn.held == 0
    node = _Node()
    aff, conn = _handed(node)
    _after(node, aff, WAIT_MS)  # linked and up, but never answering
    assert len(conn.replies) == 1 and conn.replies[0].startswith(GONE)
