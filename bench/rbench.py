"""One redis-benchmark run and the server CPU it cost: what every row of `make bench` that
redis-benchmark drives is made of.

redis-benchmark's ``--csv`` stops at p99, and the 99.9th percentile is what a Dynamo is
judged by, so the run is read from its normal output instead: the throughput and latency
summary, and the two latency distributions it prints (by percentile, and cumulative at
fixed latencies). Neither has a 99.9% line as such (the percentile steps halve what is
left: ..., 99.805%, 99.902%, ...), so p99.9 is the smallest latency either distribution
reports with at least 99.9% of the requests at or below it: never less than the true
p99.9, and within one reported step of it.

An error reply makes redis-benchmark 7 print ``Error from server: ...`` and exit 1: a run
either answered every request or says which error stopped it.
"""

from __future__ import annotations

import os
import re
import resource
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"


class BenchError(RuntimeError):
    """A setup or measurement step failed; the message says which and why."""


# --- CPU time -----------------------------------------------------------------------------


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` in seconds (fields 14 and 15 of /proc/PID/stat)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError as exc:
        raise BenchError(f"server process {pid} is gone ({exc})") from exc
    # Field 2 (comm) may contain spaces and parentheses: split after its closing ')'.
    fields = stat[stat.rindex(")") + 2:].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14, 15 counting from 1
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


def total_cpu_seconds(pids: Sequence[int]) -> float:
    """Summed CPU seconds of all ``pids``."""
    return sum(process_cpu_seconds(pid) for pid in pids)


def children_cpu_seconds() -> float:
    """utime + stime of this process's finished children (redis-benchmark runs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# --- reading redis-benchmark's output -----------------------------------------------------


@dataclass(frozen=True)
class Summary:
    """What one redis-benchmark run of one test reported."""

    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float


_DIST = re.compile(r"^\s*[\d.]+% <= ([\d.]+) milliseconds \(cumulative count (\d+)\)\s*$")
_DONE = re.compile(r"^\s*(\d+) requests completed in")
_RPS = re.compile(r"^\s*throughput summary: ([\d.]+) requests per second")


def _lines(text: str) -> list[str]:
    # The progress line is redrawn with carriage returns: each redraw is a line of its own.
    return [line for line in re.split(r"[\r\n]+", text) if line.strip()]


def percentile_ms(text: str, fraction: float) -> float:
    """The smallest latency (ms) that redis-benchmark's distributions report with at
    least ``fraction`` of the requests at or below it (an upper bound of that percentile,
    exact to the distributions' steps)."""
    points = [(int(m[2]), float(m[1])) for m in map(_DIST.match, _lines(text)) if m]
    if not points:
        raise BenchError("no latency distribution in redis-benchmark's output")
    total = max(count for count, _ in points)
    # Integer arithmetic: 0.999 * 20000 must ask for 19980 requests, not 19980.000000002.
    permille = round(fraction * 1_000_000)
    need = -(-total * permille // 1_000_000)
    return min(ms for count, ms in points if count >= need)


def parse_output(text: str) -> Summary:
    """Read one test's run from redis-benchmark's normal (not ``--csv``/``-q``) output."""
    lines = _lines(text)
    requests = rps = None
    summary: dict[str, float] = {}
    for i, line in enumerate(lines):
        if (m := _DONE.match(line)) and requests is None:
            requests = int(m[1])
        elif m := _RPS.match(line):
            rps = float(m[1])
        elif line.split() == ["avg", "min", "p50", "p95", "p99", "max"] and i + 1 < len(lines):
            try:
                summary = dict(zip(line.split(), map(float, lines[i + 1].split()),
                                   strict=True))
            except ValueError:
                summary = {}
    if requests is None or rps is None or not summary:
        raise BenchError("redis-benchmark's output has no complete summary:\n"
                         + "\n".join(lines[-12:]))
    return Summary(requests=requests, rps=rps, p50_ms=summary["p50"], p99_ms=summary["p99"],
                   p999_ms=percentile_ms(text, 0.999), max_ms=summary["max"])


def first_error(stdout: str, stderr: str, returncode: int) -> str:
    """Why a run stopped: redis-benchmark's error line, else its exit code."""
    for line in _lines(stderr) + _lines(stdout):
        if "error" in line.lower():
            return line.strip()
    return f"redis-benchmark exited with code {returncode}"


# --- one run ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """One redis-benchmark run against server processes ``pids``, with their CPU time.

    ``error`` is empty when every request was answered; otherwise it says what stopped
    the run (the figures are then zero)."""

    summary: Summary | None
    cpu_seconds: float
    client_cpu_seconds: float
    error: str = ""


def command(port: int, test: str, requests: int, keyspace: int, data_size: int,
            clients: int, pipeline: int) -> list[str]:
    """The redis-benchmark command line for one test (normal output: it has p99.9)."""
    return ["redis-benchmark", "-h", HOST, "-p", str(port), "-t", test, "-n", str(requests),
            "-r", str(keyspace), "-d", str(data_size), "-c", str(clients),
            "-P", str(pipeline)]


def run(cmd: Sequence[str], pids: Sequence[int], timeout: float,
        tolerate_errors: bool = False) -> Run:
    """Run ``cmd`` (redis-benchmark, one test), sampling the servers' CPU time just before
    and after (and redis-benchmark's own: it is the only child that ends in between).

    A run that stops on an error raises BenchError, or with ``tolerate_errors`` comes
    back with its ``error`` set: the failure rows report it instead of stopping."""
    client_before = children_cpu_seconds()
    cpu_before = total_cpu_seconds(pids)
    try:
        proc = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        if not tolerate_errors:
            raise BenchError(f"`{' '.join(cmd)}` took longer than {timeout:.0f}s") from exc
        return Run(None, total_cpu_seconds(pids) - cpu_before,
                   children_cpu_seconds() - client_before,
                   f"no answer to every request within {timeout:.0f}s")
    cpu = total_cpu_seconds(pids) - cpu_before
    client_cpu = children_cpu_seconds() - client_before
    error = ""
    summary = None
    if proc.returncode != 0:
        error = first_error(proc.stdout, proc.stderr, proc.returncode)
    else:
        try:
            summary = parse_output(proc.stdout)
        except BenchError as exc:
            error = str(exc)
    if error and not tolerate_errors:
        raise BenchError(f"`{' '.join(cmd)}` failed: {error}\n{proc.stderr[-2000:]}")
    return Run(summary, cpu, client_cpu, error)
