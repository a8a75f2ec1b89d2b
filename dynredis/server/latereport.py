"""The WARNING a node logs when collection commands time out waiting for replicas.

A NOQUORUM "... before timeout" says how many answered, not why the others did not.
The log line names the replicas that never answered and how each looked from here
when the command gave up: the failure detector's verdict, the state of this node's
link to it (linked, with bytes still unsent; connecting; not linked) and how long
since its last heartbeat. A replica heard from a moment ago over a drained link was
alive and reachable: its answer, or the request, was lost or it was slow on this very
command; one silent for the whole wait, or with bytes stuck on the link, was stalled
or cut off. (A step of the wall clock is logged on its own: server/app.py.)

At most one line a second: under an overload where requests time out by the
thousand, the others are counted into the next line.
"""

from __future__ import annotations

from collections.abc import Callable

from ..core.collcoord import Late

REPORT_EVERY_S = 1.0


def describe(late: Late, peer_state: Callable[[str], str], more: int) -> str:
    """One line for a timed-out command (`more`: others not described)."""
    key = late.key[:64].decode(errors="replace")
    step = "sync (read quorum)" if late.phase == "sync" else "write"
    silent = ", ".join(f"{peer} ({peer_state(peer)})" for peer in late.silent) or "none"
    line = (f"collection {step} of key '{key}' timed out after {late.waited_ms} ms with "
            f"{late.answered} of {late.needed} answers; no answer from {silent}")
    if more:
        line += f"; {more} more collection command(s) timed out since the last report"
    return line


class LateReport:
    """Turns the core's timed-out commands (CollCoordinator.late) into log lines."""

    def __init__(self) -> None:
        self.next_at = 0.0  # monotonic: no line before then
        self.held = 0  # timeouts counted, not described yet

    def take(self, late: list, dropped: int, mono: float,
             peer_state: Callable[[str], str]) -> str | None:
        """The line to log now for `late` (the caller empties it), or None (counted)."""
        self.held += len(late) + dropped
        if not self.held or mono < self.next_at or not late:
            return None
        more = self.held - 1
        self.held = 0
        self.next_at = mono + REPORT_EVERY_S
        return describe(late[0], peer_state, more)
