"""When a storage engine tries a failed sync to disk again.

A background sync that failed leaves its commits unsynced, and nothing else would sync
them until the next write (the buffered mode syncs only when something is pending, the
none mode never): the node's commit timer asks `due` and syncs again. Redis likewise
retries a failed BGSAVE on its schedule (every 5 s while a save point is met) and shows
`rdb_last_bgsave_status:err` until one succeeds.
"""

from __future__ import annotations

from typing import Final

FIRST_RETRY_S: Final = 1.0
MOST_RETRY_S: Final = 60.0  # a failing disk is tried at least once a minute, forever


class SyncBackoff:
    """The failures in a row and when the next try is due: FIRST_RETRY_S after the
    first failure, twice as long after each further one, at most MOST_RETRY_S (a
    failing disk is not hammered; what is unsynced reaches it within a minute of its
    coming back)."""

    __slots__ = ("failures", "retry_at")

    def __init__(self) -> None:
        self.failures = 0
        self.retry_at = 0.0  # monotonic seconds

    def failed(self, now: float) -> None:
        self.failures += 1
        self.retry_at = now + min(MOST_RETRY_S, FIRST_RETRY_S * 2.0 ** (self.failures - 1))

    def succeeded(self) -> None:
        self.failures = 0

    def due(self, now: float) -> bool:
        return self.failures > 0 and now >= self.retry_at
