"""CPU per request of the collection rows, compiled against pure Python, on one checkout.

Starts a 3-node cluster of this checkout (`dynredis cluster --detach`) once compiled and
once with DYNREDIS_PURE=1 (every module imported from its source, dynredis/native.py),
alternating `--rounds` times. Each time, every family of bench/collrows.py gets one key
filled to `--size` elements and its commands (SADD, HSET, ZADD, ZRANGE of 10 around the
middle, RPUSH+LPOP) are sent with bench/pipeload.py to the first node; the CPU time
(utime + stime from /proc/PID/stat) of the three nodes around each command's load,
divided by its requests, is its µs per request. INFO's dynredis_build is checked to
say what each cluster runs. With `--before DIR`, a third cluster each round runs the
checkout at DIR (its compiled build, with this checkout's virtualenv: started from DIR,
DIR first on PYTHONPATH), e.g. the commit before a change, built in place there.

Usage: python bench/purecpu.py [--rounds 2] [--size 10000] [--requests 20000]
                               [--before DIR]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from collrows import FAMILIES, HOST, fill, wait_quiet  # noqa: E402
from pipeload import command, run_load  # noqa: E402
from rbench import total_cpu_seconds  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DYNREDIS = str(ROOT / ".venv" / "bin" / "dynredis")


def _info_build(port: int) -> str:
    with socket.create_connection((HOST, port), timeout=30) as sock:
        sock.sendall(command(b"INFO", b"server"))
        data = b""
        while b"dynredis_build" not in data or not data.endswith(b"\r\n\r\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    for line in data.decode().splitlines():
        if line.startswith("dynredis_build:"):
            return line.split(":", 1)[1]
    raise RuntimeError("INFO has no dynredis_build")


def _start(mode: str, checkout: Path, port: int, data_dir: str) -> list[int]:
    env = dict(os.environ)
    env.pop("DYNREDIS_PURE", None)
    if mode == "pure":
        env["DYNREDIS_PURE"] = "1"
    env["PYTHONPATH"] = str(checkout)  # (the nodes run `python -m dynredis` from there)
    shutil.rmtree(data_dir, ignore_errors=True)
    subprocess.run([DYNREDIS, "cluster", "--nodes", "3", "--base-port", str(port),
                    "--cluster-port-offset", "50", "--data-dir", data_dir, "--detach"],
                   env=env, check=True, stdout=subprocess.DEVNULL, cwd=checkout)
    pids = [int(x) for x in Path(data_dir, "cluster.pids").read_text().split()]
    deadline = time.monotonic() + 60
    while True:
        try:
            res = run_load(HOST, port, [command(b"SET", b"bench:ready", b"1")], clients=1,
                           timeout=10)
            if not res.errors:
                break
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("the cluster did not answer SET within 60 s")
        time.sleep(0.5)
    build = _info_build(port)
    if (build == "compiled") != (mode != "pure"):
        raise RuntimeError(f"asked for {mode}, the node says {build}")
    for pid in pids:  # each node runs the checkout's own code
        if Path(f"/proc/{pid}/cwd").resolve() != checkout.resolve():
            raise RuntimeError(f"node {pid} does not run in {checkout}")
        if mode != "pure" and str(checkout / "dynredis") not in \
                Path(f"/proc/{pid}/maps").read_text():
            raise RuntimeError(f"node {pid} did not load {checkout}'s compiled modules")
    return pids


def _stop(data_dir: str) -> None:
    subprocess.run([DYNREDIS, "stop", "--data-dir", data_dir], check=True,
                   stdout=subprocess.DEVNULL)
    shutil.rmtree(data_dir, ignore_errors=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=2, help="compiled then pure, this many times")
    p.add_argument("--size", type=int, default=10_000, help="elements of each key")
    p.add_argument("--requests", type=int, default=20_000, help="requests per command")
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--pipeline", type=int, default=16)
    p.add_argument("--base-port", type=int, default=7400)
    p.add_argument("--data-dir", default="/tmp/purecpu-data")
    p.add_argument("--before", type=Path, default=None,
                   help="also run this checkout, compiled (built in place there)")
    args = p.parse_args()
    modes = [("compiled", ROOT), ("pure", ROOT)]
    if args.before is not None:
        modes.append(("before", args.before))

    cpu: dict[tuple[str, str], list[float]] = {}
    order: list[str] = []
    for rnd in range(args.rounds):
        for mode, checkout in modes:
            pids = _start(mode, checkout, args.base_port, args.data_dir)
            try:
                rng = random.Random(14 + rnd)
                for family in FAMILIES:
                    fill(args.base_port, family, 0, args.size, 600, print)
                    for op in family.ops:
                        reqs = [op.make(args.size, rng) for _ in range(args.requests)]
                        wait_quiet(pids, total_cpu_seconds)
                        cpu0 = total_cpu_seconds(pids)
                        res = run_load(HOST, args.base_port, reqs, op.replies, args.clients,
                                       args.pipeline, 600)
                        spent = total_cpu_seconds(pids) - cpu0
                        if res.errors:
                            raise RuntimeError(f"{op.name}: {res.errors} errors, e.g. "
                                               f"{res.first_errors}")
                        us = spent / args.requests * 1e6
                        cpu.setdefault((op.name, mode), []).append(us)
                        if op.name not in order:
                            order.append(op.name)
                        print(f"round {rnd + 1} {mode:8} {op.name:14} {us:7.1f} µs CPU/req "
                              f"({res.rps:,.0f} req/s)", flush=True)
            finally:
                _stop(args.data_dir)

    print(f"\nCPU per request, 3 nodes summed, key of {args.size:,} elements, "
          f"{args.requests:,} requests, {args.clients} clients x {args.pipeline} pipelined")
    names = [m for m, _ in modes]
    print(f"{'command':14} " + " ".join(f"{m + ' µs':>18}" for m in names)
          + " " + " ".join(f"{m + '/pure':>14}" for m in names if m != "pure"))
    for name in order:
        runs = {m: cpu[(name, m)] for m in names}
        pure = statistics.mean(runs["pure"])
        print(f"{name:14} " + " ".join(f"{' '.join(f'{x:.0f}' for x in runs[m]):>18}"
                                        for m in names)
              + " " + " ".join(f"{statistics.mean(runs[m]) / pure:>14.2f}"
                               for m in names if m != "pure"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
