"""INFO's instantaneous_ops_per_sec: Redis' sampled rate (trackInstantaneousMetric).

Every SAMPLE_MS the commands processed since the last sample become a rate; the figure
is the mean of the last SAMPLES rates, so it follows the load within about 1.6 s.
"""

from __future__ import annotations

SAMPLE_MS = 100  # Redis samples its metrics from serverCron every 100 ms
SAMPLES = 16  # STATS_METRIC_SAMPLES


class OpsRate:
    __slots__ = ("samples", "index", "last_ms", "last_count")

    def __init__(self) -> None:
        self.samples = [0] * SAMPLES
        self.index = 0
        self.last_ms = 0.0
        self.last_count = 0

    def sample(self, now_ms: float, count: int) -> None:
        """Called often (each tick); takes a sample once SAMPLE_MS have passed."""
        elapsed = now_ms - self.last_ms
        if self.last_ms and elapsed < SAMPLE_MS:
            return
        if self.last_ms and elapsed > 0:
            ops = max(count - self.last_count, 0)
            self.samples[self.index] = int(ops * 1000 / elapsed)
            self.index = (self.index + 1) % SAMPLES
        self.last_ms = now_ms
        self.last_count = count

    def per_sec(self) -> int:
        return sum(self.samples) // SAMPLES

    def reset(self, count: int = 0) -> None:
        """CONFIG RESETSTAT: the samples start again."""
        self.samples = [0] * SAMPLES
        self.index = 0
        self.last_ms = 0.0
        self.last_count = count
