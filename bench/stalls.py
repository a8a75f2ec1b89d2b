"""How long each node's event loop stalls while big values and big CLUSTER replies move
(issue 12: "no freeze over 100 ms from any request of under 1 KB").

Starts a 3-node cluster (`dynredis cluster --detach`, in a temporary data directory, on
free ports; stopped at the end) unless --port names a running one. A prober process
sends PING to every node every --interval ms over its own connection (one PING in
flight per node) and records when each was sent and answered. Then, through node 0, one
after another, each followed by a second of quiet:

  SET of a --mb MiB value, GET of it, then requests of a few bytes about it (GETCTX,
  STRLEN, GETRANGE k 0 10 and 0 -1, EXISTS, TYPE, TTL, EXPIRE k 100, PERSIST, APPEND k x,
  SETRANGE k 10 x, GETEX k EX 100, the bitmap commands over a few bytes, BITCOUNT of
  all of it, INCR, INCRBYFLOAT, SET k v NX, SETNX, MSETNX, GETEX k PERSIST, GETEX k,
  SUBSTR, MEMORY USAGE, MGET, collection commands and SORT (WRONGTYPE), PFCOUNT, LCS,
  COPY and RENAME of it), DEL of it (then UNLINK, GETDEL and
  GETSET, each of it SET again), SETCTX of a --ctx-mb MiB value, CLUSTER SHARDS / SLOTS /
  NODES, --repeat times each (pipelined, one write).

For every action and node it prints the longest PING round trip that overlapped the
action (from its start to the end of the quiet second): the node's longest stall. A
node whose event loop never blocks answers a PING in well under a millisecond. Where
the nodes are processes of this machine, it also prints the CPU time (ms, /proc) each
node spent from the action's start to the end of its quiet second: on a shared machine
stalls stretch with the load, the CPU a node spends much less; and the time its main
thread waited, runnable, for a CPU (queued: the machine's share of its stalls).

With --only REGEX only the actions whose name matches run (after the first SET), each
--rounds times; with --trace each node's latency trace (DYN.LATENCY) is on, and every
action's row names, per node, the kinds of loop work (peer_read, client_read, tick,
walk, flush, group_commit, gc_genN) that took over --trace-ms at once, with their longest
(wall/cpu/queued: the CPU time the node's loop thread spent in it, the time it waited
for a CPU).

Usage:
    python bench/stalls.py [--mb 100] [--ctx-mb 32] [--repeat 50] [--port PORT]
                           [--only REGEX] [--rounds N] [--trace] [--trace-ms 20]
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing as mp
import os
import re
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from multiprocessing.connection import Connection

import redis

NODES = 3
PING = b"*1\r\n$4\r\nPING\r\n"


def probe(ports: list[int], interval: float, stop: Connection) -> None:
    """PING every node every `interval` s; on a message from `stop`, send back per node
    the list of (sent, answered) monotonic times."""
    socks = [socket.create_connection(("127.0.0.1", p)) for p in ports]
    for s in socks:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
    sent: list[float | None] = [None] * len(socks)
    due = [0.0] * len(socks)
    bufs = [b""] * len(socks)
    rounds: list[list[tuple[float, float]]] = [[] for _ in socks]
    while not stop.poll():
        now = time.monotonic()
        for i, s in enumerate(socks):
            if sent[i] is None and now >= due[i]:
                s.send(PING)
                sent[i] = now
        waiting = [s for i, s in enumerate(socks) if sent[i] is not None]
        readable, _, _ = select.select(waiting, [], [], interval)
        now = time.monotonic()
        for s in readable:
            i = socks.index(s)
            bufs[i] += s.recv(4096)
            # +PONG, or an error (-BUSY while a script runs): one line either way
            while (end := bufs[i].find(b"\r\n")) >= 0:
                bufs[i] = bufs[i][end + 2:]
                t0 = sent[i]
                assert t0 is not None
                rounds[i].append((t0, now))
                sent[i] = None
                due[i] = t0 + interval
    now = time.monotonic()
    for i, t0 in enumerate(sent):
        if t0 is not None:  # still unanswered: counts as stalled until now
            rounds[i].append((t0, now))
    stop.send(rounds)


def longest(rounds: list[tuple[float, float]], start: float, end: float) -> float:
    """The longest round trip (ms) that overlapped [start, end]."""
    return max(((b - a) * 1000 for a, b in rounds if b >= start and a <= end), default=0.0)


def start_cluster(data_dir: str) -> int:
    base = free_base()
    cmd = [shutil.which("dynredis") or sys.executable, *([] if shutil.which("dynredis")
           else ["-m", "dynredis"]), "cluster", "--nodes", str(NODES), "--base-port",
           str(base), "--data-dir", data_dir, "--detach"]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    return base


def stop_cluster(data_dir: str) -> None:
    cmd = [shutil.which("dynredis") or sys.executable, *([] if shutil.which("dynredis")
           else ["-m", "dynredis"]), "stop", "--data-dir", data_dir]
    subprocess.run(cmd, capture_output=True, timeout=60)


def free_base() -> int:
    from dynredis.localproc import port_free
    for base in range(21000, 39000, 37):
        if all(port_free("127.0.0.1", base + i) and port_free("127.0.0.1", base + 10000 + i)
               for i in range(NODES)):
            return base
    raise RuntimeError("no free ports")


def actions(c: redis.Redis, mb: int, ctx_mb: int, repeat: int
            ) -> list[tuple[str, object]]:
    value = os.urandom(1 << 20) * mb
    ctx_value = os.urandom(1 << 20) * ctx_mb

    def cluster(sub: str) -> object:
        pipe = c.pipeline(transaction=False)
        for _ in range(repeat):
            pipe.execute_command("CLUSTER", sub)
        return len(pipe.execute())

    return [
        (f"SET {mb} MiB", lambda: c.set("stalls:big", value)),
        (f"GET {mb} MiB", lambda: len(c.get("stalls:big") or b"")),
        (f"GET {mb} MiB in MULTI/EXEC", lambda: len(_in_exec(c, "stalls:big"))),
        ("GETCTX", lambda: len(c.execute_command("GETCTX", "stalls:big")[1][0])),
        ("STRLEN", lambda: c.strlen("stalls:big")),
        ("GETRANGE k 0 10", lambda: c.getrange("stalls:big", 0, 10)),
        ("GETRANGE k 0 -1", lambda: len(c.getrange("stalls:big", 0, -1))),
        ("EXISTS", lambda: c.exists("stalls:big")),
        ("TYPE", lambda: c.type("stalls:big")),
        ("TTL", lambda: c.ttl("stalls:big")),
        ("EXPIRE k 100", lambda: c.expire("stalls:big", 100)),
        ("PERSIST", lambda: c.persist("stalls:big")),
        ("APPEND k x", lambda: c.append("stalls:big", b"x")),
        ("SETRANGE k 10 x", lambda: c.setrange("stalls:big", 10, b"x")),
        ("GETEX k EX 100", lambda: len(c.getex("stalls:big", ex=100) or b"")),
        ("GETBIT k 5", lambda: c.getbit("stalls:big", 5)),
        ("SETBIT k 5 1", lambda: c.setbit("stalls:big", 5, 1)),
        ("BITCOUNT k 0 9", lambda: c.bitcount("stalls:big", 0, 9)),
        ("BITPOS k 1 0 9", lambda: c.bitpos("stalls:big", 1, 0, 9)),
        ("BITCOUNT k (all of it)", lambda: c.bitcount("stalls:big")),
        ("BITFIELD k SET u8 0 1", lambda: c.execute_command(
            "BITFIELD", "stalls:big", "SET", "u8", 0, 1)),
        ("BITFIELD_RO k GET u8 0", lambda: c.execute_command(
            "BITFIELD_RO", "stalls:big", "GET", "u8", 0)),
        ("INCR k (not an integer)", lambda: _error_of(lambda: c.incr("stalls:big"))),
        ("INCRBYFLOAT k 1 (no float)", lambda: _error_of(
            lambda: c.incrbyfloat("stalls:big", 1))),
        ("SET k v NX", lambda: c.set("stalls:big", b"v", nx=True)),
        ("SETNX k v", lambda: c.setnx("stalls:big", b"v")),
        ("MSETNX k v k4 v", lambda: c.msetnx({"stalls:big": b"v", "stalls:big4": b"v"})),
        ("GETEX k PERSIST", lambda: len(c.getex("stalls:big", persist=True) or b"")),
        ("GETEX k", lambda: len(c.getex("stalls:big") or b"")),
        ("SUBSTR k 0 10", lambda: c.execute_command("SUBSTR", "stalls:big", 0, 10)),
        ("MEMORY USAGE", lambda: c.memory_usage("stalls:big")),
        ("MGET k missing", lambda: len(c.mget("stalls:big", "stalls:none")[0] or b"")),
        ("HGET k f (WRONGTYPE)", lambda: _error_of(lambda: c.hget("stalls:big", "f"))),
        ("LPUSH k x (WRONGTYPE)", lambda: _error_of(lambda: c.lpush("stalls:big", "x"))),
        ("SUNION k (WRONGTYPE)", lambda: _error_of(lambda: c.sunion("stalls:big"))),
        ("SORT k (WRONGTYPE)", lambda: _error_of(lambda: c.sort("stalls:big"))),
        ("PFCOUNT k (not an HLL)", lambda: _error_of(lambda: c.pfcount("stalls:big"))),
        ("LCS k missing", lambda: c.execute_command("LCS", "stalls:big", "stalls:none")),
        ("COPY k k2", lambda: c.copy("stalls:big", "stalls:big2")),
        ("RENAME k2 k3", lambda: c.rename("stalls:big2", "stalls:big3")),
        ("SET k3 small", lambda: c.set("stalls:big3", b"small")),
        ("DEL", lambda: c.delete("stalls:big")),
        (f"SET {mb} MiB again", lambda: c.set("stalls:big", value)),
        ("UNLINK", lambda: c.unlink("stalls:big")),
        (f"SET {mb} MiB again", lambda: c.set("stalls:big", value)),
        ("GETDEL", lambda: len(c.getdel("stalls:big") or b"")),
        (f"SET {mb} MiB again", lambda: c.set("stalls:big", value)),
        ("GETSET k small", lambda: len(c.getset("stalls:big", b"small") or b"")),
        (f"SETRANGE new k {mb} MiB x", lambda: _made(c, "SETRANGE", (mb << 20) - 1, "x")),
        (f"SETBIT new k {mb} MiB 1", lambda: _made(c, "SETBIT", (mb << 23) - 1, 1)),
        (f"SETCTX {ctx_mb} MiB", lambda: c.execute_command("SETCTX", "stalls:ctx", "",
                                                            ctx_value)),
        (f"CLUSTER SHARDS x{repeat}", lambda: cluster("SHARDS")),
        (f"CLUSTER SLOTS x{repeat}", lambda: cluster("SLOTS")),
        (f"CLUSTER NODES x{repeat}", lambda: cluster("NODES")),
    ]


def _in_exec(c: redis.Redis, key: str) -> bytes:
    """GET `key` in a transaction (redis-py's default pipeline)."""
    tx = c.pipeline(transaction=True)
    tx.get(key)
    return tx.execute()[0] or b""  # type: ignore[no-any-return]


_MADE = itertools.count()


def _made(c: redis.Redis, command: str, offset: int, arg: object) -> object:
    """A large value made on a missing key by a request of a few bytes (SETRANGE or
    SETBIT far past the end), a new key each time (left for the final FLUSHALL)."""
    return c.execute_command(command, f"stalls:made{next(_MADE)}", offset, arg)


def _error_of(run: object) -> str:
    """The error a request is answered with ('' if it succeeds)."""
    try:
        run()  # type: ignore[operator]
    except redis.ResponseError as e:
        return str(e)
    return ""


def node_pids(ports: list[int]) -> list[int | None]:
    """The pid of the local `dynredis node` process serving each port (None if none)."""
    found: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                words = f.read().split(b"\0")
        except OSError:
            continue
        if b"node" in words and b"--port" in words:
            at = words.index(b"--port") + 1
            if at < len(words) and words[at].isdigit():
                found[int(words[at])] = int(entry)
    return [found.get(p) for p in ports]


def cpu_ms(pid: int | None) -> float:
    """CPU time (user + system, ms) process `pid` has used; 0 if unknown."""
    if pid is None:
        return 0.0
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def queued_ms(pid: int | None) -> float:
    """Time (ms) the main thread of process `pid` has spent runnable but waiting for a
    CPU (/proc schedstat): a stall the machine caused, not the node; 0 if unknown."""
    if pid is None:
        return 0.0
    try:
        with open(f"/proc/{pid}/task/{pid}/schedstat") as f:
            return int(f.read().split()[1]) / 1e6
    except (OSError, IndexError, ValueError):
        return 0.0


def measure(port: int, args: argparse.Namespace) -> None:
    ports = [port + i for i in range(NODES)]
    pids = node_pids(ports)
    c = redis.Redis(port=port, socket_timeout=300)
    for p in ports:
        redis.Redis(port=p, socket_timeout=30).ping()
    ours, theirs = mp.Pipe()
    prober = mp.Process(target=probe, args=(ports, args.interval / 1000, theirs))
    prober.start()
    time.sleep(1.0)
    windows = []
    nodes = [redis.Redis(port=p, socket_timeout=30) for p in ports]
    if args.trace:
        for n in nodes:
            n.execute_command("DYN.LATENCY", "ON", 1 << 30)
    for name, run in chosen(actions(c, args.mb, args.ctx_mb, args.repeat), args):
        if args.trace:
            for n in nodes:
                n.execute_command("DYN.LATENCY", "RESET")
            counted = [counters(n) for n in nodes]
        cpu0 = [cpu_ms(pid) for pid in pids]
        wait0 = [queued_ms(pid) for pid in pids]
        t0 = time.monotonic()
        try:
            reply = run()
        except redis.RedisError as exc:
            reply = f"error: {exc}"
        took = time.monotonic() - t0
        time.sleep(args.quiet)
        cpu = [cpu_ms(pid) - c0 for pid, c0 in zip(pids, cpu0, strict=True)]
        cpu += [queued_ms(pid) - w0 for pid, w0 in zip(pids, wait0, strict=True)]
        if args.trace:
            moved = " ".join(f"n{i}:{k}+{v}" for i, (n, c0) in enumerate(zip(nodes, counted, strict=True))
                             for k, v in counters(n, c0).items() if v)
            reply = f"{str(reply)[:20]} {slow_work(nodes, args.trace_ms)} {moved}"
        windows.append((name, t0, time.monotonic(), took, reply, cpu))
    ours.send("stop")
    rounds = ours.recv()
    prober.join()
    down = [redis.Redis(port=p).info("dynamo").get("members_down") or "-" for p in ports]
    print(f"build: {redis.Redis(port=port).info('server').get('dynredis_build')}")
    local = all(pid is not None for pid in pids)
    print(f"{'action':<24}{'took s':>8}  " + "".join(f"{'node ' + str(i) + ' ms':>12}"
                                                     for i in range(NODES))
          + ("".join(f"{'cpu ' + str(i) + ' ms':>10}" for i in range(NODES)) if local else "")
          + ("".join(f"{'queued ' + str(i):>9}" for i in range(NODES)) if local else "")
          + "  reply")
    for name, t0, t1, took, reply, cpu in windows:
        cells = "".join(f"{longest(rounds[i], t0, t1):>12.1f}" for i in range(NODES))
        if local:
            cells += "".join(f"{ms:>10.0f}" for ms in cpu[:NODES])
            cells += "".join(f"{ms:>9.0f}" for ms in cpu[NODES:])
        print(f"{name:<24}{took:>8.2f}  {cells}  {str(reply)[:90 if not args.trace else 400]}")
    print(f"PINGs answered per node: {[len(r) for r in rounds]}; members down "
          f"afterwards: {down}")


def chosen(all_actions: list[tuple[str, object]], args: argparse.Namespace
           ) -> list[tuple[str, object]]:
    """The actions to run: all, or the first SET then those --only matches, --rounds
    times each."""
    if not args.only:
        return all_actions
    wanted = [a for a in all_actions[1:] if re.search(args.only, a[0])]
    return [all_actions[0]] + [a for a in wanted for _ in range(args.rounds)]


LOOP_WORK = ("peer_read", "client_read", "tick", "walk", "flush", "group_commit", "stream",
             "script")


COUNTERS = ("coordinated_puts", "coordinated_gets", "read_repairs", "timeouts",
            "noquorum_errors", "ae_keys_repaired", "hints_created", "hints_delivered")


def counters(n: redis.Redis, since: dict[str, int] | None = None) -> dict[str, int]:
    """A node's counters of what a write may set off (read repairs, hints ...), or
    their change `since` an earlier reading."""
    info = {**n.info("stats"), **n.info("dynamo")}
    now = {k: int(info.get(k, 0)) for k in COUNTERS}
    return now if since is None else {k: now[k] - since[k] for k in COUNTERS}


def slow_work(nodes: list[redis.Redis], ms: float) -> str:
    """Per node, the kinds of loop work whose longest run was over `ms`, with the longest
    CPU time and run-queue wait of such work (n0:peer_read=480/90c/370q: mostly the
    machine's doing)."""
    out = []
    for i, n in enumerate(nodes):
        top: dict[str, float] = {}
        for row in n.execute_command("DYN.LATENCY", "STAGES"):
            name = row[0].decode() if isinstance(row[0], bytes) else row[0]
            top[name] = row[5] / 1000
        for name, wall in top.items():
            if (name in LOOP_WORK or re.fullmatch(r"gc_gen\d|msg_\w+_cpu", name)) \
                    and wall > ms:
                extra = "".join(f"/{top[name + s]:.0f}{s[1]}" for s in ("_cpu", "_queued")
                                if name + s in top)
                out.append(f"n{i}:{name}={wall:.0f}{extra}")
    return " ".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, default=0, help="a running cluster's first port")
    ap.add_argument("--mb", type=int, default=100)
    ap.add_argument("--ctx-mb", type=int, default=32)
    ap.add_argument("--repeat", type=int, default=50)
    ap.add_argument("--interval", type=float, default=5.0, help="ms between PINGs")
    ap.add_argument("--quiet", type=float, default=1.0, help="s after each action")
    ap.add_argument("--only", default="", help="a regex: run only these actions")
    ap.add_argument("--rounds", type=int, default=1, help="times each --only action runs")
    ap.add_argument("--trace", action="store_true", help="name the slow loop work")
    ap.add_argument("--trace-ms", type=float, default=20.0)
    args = ap.parse_args()
    if args.port:
        measure(args.port, args)
        return
    data_dir = tempfile.mkdtemp(prefix="dynredis-stalls-")
    try:
        measure(start_cluster(data_dir), args)
    finally:
        stop_cluster(data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
