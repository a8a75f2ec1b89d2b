"""Two builds of dynredis side by side: a change's CPU per request against its base's, in
one run (issue 17).

`make bench` starts each system fresh, one after another; on this shared machine two such
runs of one build differ by ±10% at `-P 1`, more than most single changes buy. Here both
builds' clusters run at once (each from its own checkout's .venv), and the same
redis-benchmark test alternates between them round by round, so drift in the machine's
speed falls on both alike. Per test it prints each round's server CPU µs per request
(all of a cluster's processes, from /proc), the medians and B's median over A's, then
each round's p99.9 latency (redis-benchmark's distribution) and the medians.

Usage:
    python bench/abpair.py A_CHECKOUT B_CHECKOUT [--nodes 3] [--base-port 24700]
        [--rounds 5] [--tests set:1,get:1,set:16,get:16] [-n 100000] [-r 100000] [-d 64]
        [-c 50] [--cluster-port-offset 50] [--a-args "..."] [--b-args "..."]

--a-args / --b-args add `dynredis cluster` options to one side only: one checkout twice
with `--b-args "--engine memory"` measures what a setting costs.

A's cluster gets ports from --base-port, B's from --base-port + 10 (and each cluster port
--cluster-port-offset above those).
"""

from __future__ import annotations

import argparse
import contextlib
import shlex
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import rbench  # noqa: E402
from bench.run import dynredis_cluster  # noqa: E402


def parse_tests(text: str) -> list[tuple[str, int]]:
    """`set:1,get:16` -> [("set", 1), ("get", 16)]."""
    out = []
    for item in text.split(","):
        test, _, depth = item.partition(":")
        out.append((test.strip(), int(depth or 1)))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a", type=Path)
    ap.add_argument("b", type=Path)
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--base-port", type=int, default=24700)
    ap.add_argument("--cluster-port-offset", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--tests", type=parse_tests, default=parse_tests("set:1,get:1,set:16,get:16"))
    ap.add_argument("-n", "--requests", type=int, default=100_000)
    ap.add_argument("-r", "--keyspace", type=int, default=100_000)
    ap.add_argument("-d", "--data-size", type=int, default=64)
    ap.add_argument("-c", "--clients", type=int, default=50)
    ap.add_argument("--a-args", type=shlex.split, default=[])
    ap.add_argument("--b-args", type=shlex.split, default=[])
    args = ap.parse_args(argv)
    ports = {"A": args.base_port, "B": args.base_port + 10}
    with contextlib.ExitStack() as stack:
        pids = {}
        offset = ["--cluster-port-offset", str(args.cluster_port_offset)]
        sides = (("A", args.a, args.a_args), ("B", args.b, args.b_args))
        for name, checkout, extra in sides:
            system = stack.enter_context(dynredis_cluster(
                f"abpair-{name}", args.nodes, ports[name], [*offset, *extra],
                checkout.resolve()))
            pids[name] = system.pids
            print(f"{name}: {checkout} ({system.build}), port {ports[name]}", flush=True)
        for test, depth in args.tests:
            per: dict[str, list[float]] = {"A": [], "B": []}
            tails: dict[str, list[float]] = {"A": [], "B": []}
            for rnd in range(args.rounds):
                order = ("A", "B") if rnd % 2 == 0 else ("B", "A")
                for name in order:
                    cmd = rbench.command(ports[name], test, args.requests, args.keyspace,
                                         args.data_size, args.clients, depth)
                    got = rbench.run(cmd, pids[name], timeout=900.0)
                    per[name].append(got.cpu_seconds / args.requests * 1e6)
                    if got.summary is not None:
                        tails[name].append(got.summary.p999_ms)
            a, b = statistics.median(per["A"]), statistics.median(per["B"])
            rounds = "  ".join(f"{x:.1f}/{y:.1f}" for x, y in zip(per["A"], per["B"],
                                                                  strict=True))
            print(f"{test.upper()} -P {depth}: A {a:.2f} µs, B {b:.2f} µs, B/A {b / a:.3f}"
                  f"  (rounds A/B: {rounds})", flush=True)
            if tails["A"] and tails["B"]:
                ta, tb = statistics.median(tails["A"]), statistics.median(tails["B"])
                spread = "  ".join(f"{x:.1f}/{y:.1f}" for x, y in zip(tails["A"], tails["B"],
                                                                      strict=False))
                print(f"{test.upper()} -P {depth} p99.9: A {ta:.1f} ms, B {tb:.1f} ms"
                      f"  (rounds A/B: {spread})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
