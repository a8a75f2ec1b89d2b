"""Failure detection: a phi-accrual detector per peer (Hayashibara et al., as in Akka/Cassandra).

Peers send heartbeats on a fixed interval. For each peer the detector keeps a window
of recent inter-arrival times and turns "time since the last heartbeat" into phi,
the -log10 probability that a live peer would be this late. A peer is suspect above
half the threshold and down above it. Failure is local and temporary: a down peer
is skipped when requests pick replicas, never removed from the ring.
"""

from __future__ import annotations

import math
from collections import deque

UP = "up"
SUSPECT = "suspect"
DOWN = "down"


class PhiAccrual:
    """Phi-accrual failure detection over heartbeat arrival times (ms)."""

    def __init__(
        self,
        threshold: float = 8.0,
        window: int = 100,
        min_std_ms: float = 100.0,
        acceptable_pause_ms: float = 500.0,
        first_interval_ms: float = 1000.0,
        max_interval_ms: float = 5000.0,
    ) -> None:
        self.max_interval_ms = max_interval_ms
        self.threshold = threshold
        self.window = window
        self.min_std_ms = min_std_ms
        self.acceptable_pause_ms = acceptable_pause_ms
        self.first_interval_ms = first_interval_ms
        self._last: dict[str, int] = {}
        self._intervals: dict[str, deque[float]] = {}

    def heartbeat(self, peer: str, now: int) -> None:
        """Record a heartbeat from `peer` arriving at `now`."""
        last = self._last.get(peer)
        hist = self._intervals.get(peer)
        if hist is None:
            # Seed the history so the first judgement does not rest on one sample.
            hist = self._intervals[peer] = deque(maxlen=self.window)
            hist.append(self.first_interval_ms)
        elif last is not None and now > last and now - last <= self.max_interval_ms:
            # A gap much longer than the heartbeat interval is a restart or a
            # partition that healed, not a sample of the peer's normal rhythm.
            hist.append(float(now - last))
        self._last[peer] = now

    def shift(self, ms: int, before: int) -> None:
        """The clock the arrival times are read on jumped `ms` ahead: the arrivals noted
        on the old timeline (at or before `before`) move with it, so that no peer looks
        silent for time that did not pass (a 2 s jump made every peer count as down)."""
        last = self._last
        for peer, at in last.items():
            if at <= before:
                last[peer] = at + ms

    def forget(self, peer: str) -> None:
        self._last.pop(peer, None)
        self._intervals.pop(peer, None)

    def heard(self, peer: str) -> int | None:
        """When `peer`'s last heartbeat arrived (None: never)."""
        return self._last.get(peer)

    def known(self, peer: str) -> bool:
        return peer in self._last

    def phi(self, peer: str, now: int) -> float:
        """Suspicion level of `peer`; 0 for a peer never heard from (no evidence yet)."""
        last = self._last.get(peer)
        if last is None:
            return 0.0
        hist = self._intervals[peer]
        mean = sum(hist) / len(hist)
        var = sum((x - mean) ** 2 for x in hist) / len(hist)
        std = max(math.sqrt(var), self.min_std_ms)
        elapsed = now - last
        return _phi(elapsed, mean + self.acceptable_pause_ms, std)

    def status(self, peer: str, now: int) -> str:
        p = self.phi(peer, now)
        if p >= self.threshold:
            return DOWN
        if p >= self.threshold / 2:
            return SUSPECT
        return UP


def _phi(elapsed: float, mean: float, std: float) -> float:
    """-log10(P(a heartbeat is later than `elapsed`)) under a normal approximation.

    Uses the logistic approximation of the normal CDF that Akka uses, which stays
    finite and monotone far into the tail.
    """
    y = max(-30.0, min(30.0, (elapsed - mean) / std))
    e = math.exp(-y * (1.5976 + 0.070566 * y * y))
    p_later = e / (1.0 + e) if elapsed > mean else 1.0 - 1.0 / (1.0 + e)
    return -math.log10(max(p_later, 1e-300))
