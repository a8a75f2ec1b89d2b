"""What a node records of the commands it runs: INFO commandstats, errorstats and
latencystats, SLOWLOG and LATENCY.

The server records each command a client of this node sends: its calls, the time the
node spent running it (as Redis' own figures: the command's execution, not the wait for
replicas that a quorum command's reply includes), refusals before it ran (arity, ACL,
LOADING, BUSY: rejected_calls) and error replies (failed_calls), every error reply by
its first word (errorstats). The time of one call goes into a log-scale histogram with
four buckets per power of two (latencystats' percentiles and LATENCY HISTOGRAM are read
from it, so they are accurate to within a quarter of a power of two), into the slow
log when it passes `slowlog-log-slower-than`, and into the latency monitor's "command"
event when it passes `latency-monitor-threshold` (ms, 0: off).
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

BUCKETS = 4 * 64  # four per power of two of nanoseconds
SLOWLOG_ARGS = 32  # as Redis: at most 32 arguments, each at most 128 bytes
SLOWLOG_ARG_BYTES = 128
LATENCY_HISTORY = 160  # samples kept per latency event, as Redis


def bucket_of(ns: int) -> int:
    bits = ns.bit_length()
    if bits < 3:
        return ns
    return (bits << 2) | ((ns >> (bits - 3)) & 3)


def bucket_top(i: int) -> int:
    """The largest duration (ns) that falls in bucket `i`."""
    bits, sub = i >> 2, i & 3
    if bits < 3:
        return i
    return ((4 | sub) + 1 << (bits - 3)) - 1


class CallStat:
    __slots__ = ("calls", "ns", "rejected", "failed", "hist")

    def __init__(self) -> None:
        self.calls = 0
        self.ns = 0
        self.rejected = 0
        self.failed = 0
        self.hist: list[int] | None = None  # per bucket, once it has a timed call

    def timed(self, ns: int) -> None:
        self.calls += 1
        self.ns += ns
        hist = self.hist
        if hist is None:
            hist = self.hist = [0] * BUCKETS
        hist[bucket_of(ns)] += 1

    def percentile(self, p: float) -> float:
        """The duration (µs) at or below which `p` percent of the calls took."""
        hist = self.hist
        if hist is None:
            return 0.0
        total = sum(hist)
        want = max(1, -(-int(total * p * 1000) // 100_000))
        seen = 0
        for i, n in enumerate(hist):
            seen += n
            if seen >= want:
                return bucket_top(i) / 1000
        return 0.0


class SlowEntry:
    __slots__ = ("id", "when", "us", "args", "peer", "name")

    def __init__(self, id: int, when: int, us: int, args: list[bytes], peer: str,
                 name: str) -> None:
        self.id = id
        self.when = when
        self.us = us
        self.args = args
        self.peer = peer
        self.name = name


def slowlog_args(args: list[bytes]) -> list[bytes]:
    """A command's arguments as the slow log keeps them (Redis' truncation)."""
    out = []
    for i, a in enumerate(args):
        if i == SLOWLOG_ARGS - 1 and len(args) > SLOWLOG_ARGS:
            out.append(b"... (%d more arguments)" % (len(args) - SLOWLOG_ARGS + 1))
            break
        if len(a) > SLOWLOG_ARG_BYTES:
            a = a[:SLOWLOG_ARG_BYTES] + b"... (%d more bytes)" % (len(a) - SLOWLOG_ARG_BYTES)
        out.append(a)
    return out


class CallStats:
    """The node's command figures (reset by CONFIG RESETSTAT, except the slow log)."""

    def __init__(self) -> None:
        self.by_name: dict[str, CallStat] = {}
        self.errors: dict[str, int] = {}
        self.error_replies = 0
        self.slowlog: deque[SlowEntry] = deque()
        self.slowlog_next = 0
        # Settings (CONFIG SET changes them).
        self.slower_than_us = 10_000  # slowlog-log-slower-than (-1: off, 0: every command)
        self.slowlog_max = 128  # slowlog-max-len
        self.latency_threshold_ms = 0  # latency-monitor-threshold
        self.tracking = True  # latency-tracking
        self.percentiles: list[float] = [50.0, 99.0, 99.9]
        # Latency monitor: event -> [(unix time, ms)], and its maximum.
        self.latency: dict[str, deque[tuple[int, int]]] = {}
        self.latency_max: dict[str, int] = {}

    def stat(self, name: str) -> CallStat:
        s = self.by_name.get(name)
        if s is None:
            s = self.by_name[name] = CallStat()
        return s

    def error(self, reply: bytes) -> None:
        """An error reply went to a client: count it under its first word."""
        self.error_replies += 1
        end = reply.find(b" ")
        nl = reply.find(b"\r")
        if end < 0 or 0 <= nl < end:
            end = nl
        code = reply[1:end].decode("utf-8", "replace") if end > 1 else "ERR"
        if len(self.errors) >= 128 and code not in self.errors:
            return  # Redis stops tracking new error codes at 128 as well
        self.errors[code] = self.errors.get(code, 0) + 1

    def ran(self, stat: CallStat, ns: int, args: list[bytes], conn: Any) -> None:
        """A command ran for `ns` nanoseconds."""
        if self.tracking:
            stat.timed(ns)
        else:
            stat.calls += 1
            stat.ns += ns
        us = ns // 1000
        limit = self.slower_than_us
        if 0 <= limit <= us:
            self._slow(us, args, conn)
        threshold = self.latency_threshold_ms
        if threshold and us >= threshold * 1000:
            self.event("command", us // 1000)

    def _slow(self, us: int, args: list[bytes], conn: Any) -> None:
        if self.slowlog_max <= 0:
            return
        name = conn.name.decode("utf-8", "replace") if conn.name else ""
        self.slowlog.appendleft(SlowEntry(self.slowlog_next, int(time.time()), us,
                                          slowlog_args(args), conn.peer, name))
        self.slowlog_next += 1
        while len(self.slowlog) > self.slowlog_max:
            self.slowlog.pop()

    def event(self, name: str, ms: int) -> None:
        samples = self.latency.get(name)
        if samples is None:
            samples = self.latency[name] = deque(maxlen=LATENCY_HISTORY)
        now = int(time.time())
        if samples and samples[-1][0] == now:
            if ms > samples[-1][1]:
                samples[-1] = (now, ms)
        else:
            samples.append((now, ms))
        if ms > self.latency_max.get(name, 0):
            self.latency_max[name] = ms

    def reset(self) -> None:
        """CONFIG RESETSTAT."""
        self.by_name.clear()
        self.errors.clear()
        self.error_replies = 0


def fmt_percentile(p: float) -> str:
    """50 -> "50", 99.9 -> "99.9" (Redis' %.17g-ish of the configured value)."""
    text = f"{p:.6f}".rstrip("0").rstrip(".")
    return text or "0"


def commandstats(stats: CallStats) -> dict[str, str]:
    out = {}
    for name, s in stats.by_name.items():
        if not s.calls and not s.rejected and not s.failed:
            continue
        usec = s.ns // 1000
        per = usec / s.calls if s.calls else 0.0
        out[f"cmdstat_{name}"] = (f"calls={s.calls},usec={usec},usec_per_call={per:.2f},"
                                  f"rejected_calls={s.rejected},failed_calls={s.failed}")
    return out


def errorstats(stats: CallStats) -> dict[str, str]:
    return {f"errorstat_{code}": f"count={n}" for code, n in stats.errors.items()}


def latencystats(stats: CallStats) -> dict[str, str]:
    out = {}
    for name, s in stats.by_name.items():
        if s.hist is None:
            continue
        parts = [f"p{fmt_percentile(p)}={s.percentile(p):.3f}" for p in stats.percentiles]
        out[f"latency_percentiles_usec_{name}"] = ",".join(parts)
    return out
