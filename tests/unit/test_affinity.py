"""Key affinity's hand-over (cluster/affinity.py): when a command handed to its key's
node fails for want of an answer, and how a long plan keeps the handing node waiting."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from dynredis.cluster.affinity import PROGRESS_MS, WAIT_MS, Affinity

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
        self.steps = 0  # its reply seen working (server/client.py's unstick)

    def defer(self) -> Any:
        return SimpleNamespace(set=self.replies.append, touch=self._touch)

    def _touch(self) -> None:
        self.steps += 1

    def hold(self) -> None:
        self.held += 1

    def release_hold(self) -> None:
        self.held -= 1


def _handed(node: _Node, args: list[bytes] | None = None) -> tuple[Affinity, _Conn]:
    aff = Affinity(node, lambda *a: None)
    conn = _Conn()
    args = args or [b"setrange", b"k", b"104857599", b"x"]
    aff.send(conn, TARGET, args[0].decode(), args)
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
    assert (aff.handed, aff.failed, len(aff.pending)) == (1, 0, 0)  # (INFO dynamo's)


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
    assert (aff.handed, aff.failed, len(aff.pending)) == (1, 1, 0)  # (INFO dynamo's)
    aff.reset_stats()  # CONFIG RESETSTAT
    assert (aff.handed, aff.failed) == (0, 0)


def test_a_plan_moving_on_is_waited_for_past_wait_ms() -> None:
    """A RENAME of a million-item list takes longer than WAIT_MS: while its target says
    it moves on ("afp"), even counted down by the detector meanwhile, the handing node
    waits and its client's reply is seen working; its reply is the plan's."""
    node = _Node()
    aff, conn = _handed(node, [b"rename", b"src", b"dst"])
    reqid = node.sent[0][1][1]
    for i in range(3 * WAIT_MS // 1000):
        node.status = "down" if i % 10 < 5 else "up"  # (heartbeats late now and then)
        _after(node, aff, 1000)
        aff._on_progress(TARGET, ("afp", reqid))
    assert conn.replies == [] and conn.held == 1 and conn.steps == 3 * WAIT_MS // 1000
    aff._on_progress("10.0.0.3:7000", ("afp", reqid))  # not its target: not counted
    assert conn.steps == 3 * WAIT_MS // 1000
    aff._on_answer(TARGET, ("afa", reqid, b"+OK\r\n"))
    assert conn.replies == [b"+OK\r\n"] and conn.held == 0


def test_a_plan_whose_target_goes_silent_or_down_fails_after_all() -> None:
    node = _Node()
    aff, conn = _handed(node, [b"rename", b"src", b"dst"])
    reqid = node.sent[0][1][1]
    _after(node, aff, WAIT_MS - 1000)
    aff._on_progress(TARGET, ("afp", reqid))
    _after(node, aff, WAIT_MS - 100)
    assert conn.replies == []
    _after(node, aff, 100)  # WAIT_MS after its last step
    assert len(conn.replies) == 1 and conn.replies[0].startswith(GONE)
    node = _Node()
    aff, conn = _handed(node, [b"rename", b"src", b"dst"])
    aff._on_progress(TARGET, ("afp", node.sent[0][1][1]))
    node.status = "down"  # and no more steps heard: the request timeout
    _after(node, aff, 2100)
    assert len(conn.replies) == 1 and conn.replies[0].startswith(GONE)


def test_the_node_running_a_plan_tells_its_steps_at_most_every_progress_ms() -> None:
    node = _Node()
    touches: list[Any] = []
    aff = Affinity(node, lambda *a: touches.append(a[-1]))
    aff._on_forward("10.0.0.1:7000", ("af", 7, [b"rename", b"s", b"d"], "default", 2, 0, 0, 0))
    touch = touches[0]
    for _ in range(50):  # steps 100 ms apart
        node.now += 100
        touch()
    assert node.sent == [("10.0.0.1:7000", ("afp", 7))] * (50 * 100 // PROGRESS_MS)
