"""Growing and shrinking a running cluster under load: a 4th and a 5th node join and
one of the first three leaves, each staged, planned and committed with DYN.ADMIN (the
same requests `dynredis admin` sends), while writers record every write a node
acknowledged (strings, and elements added by SADD, HSET and RPUSH) and readers check
that no read goes back in time. Afterwards every acknowledged write and element reads
back from every node, the departed node has stopped, and CLUSTER SLOTS describes the
new ring.

The data moved per change (INFO's transfer_keys_received: keys, element records and
collections' event summaries) is printed against the ideal
(the joining node's replica share, or the leaving node's), with the transfer rate.
"""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import redis

from tests.integration.conftest import (
    _LIVE_PROCS,
    CLUSTER_PORT_OFFSET,
    HOST,
    Cluster,
    ClusterFactory,
    free_port_range,
    parse_info,
    raw_command,
    wait_dead,
    wait_until,
)

KEYS_PER_WRITER = 300
WRITERS = 3
COLLECTIONS = 20  # keys of each type the collection writer adds elements to
SETTLE_TIMEOUT_S = 120.0


class Load:
    """Writers (one key set each, values counting up) and a reader, through nodes that
    stay in the cluster throughout."""

    def __init__(self, ports: list[int]) -> None:
        self.ports = ports
        self.acked: dict[str, int] = {}
        self.errors: list[str] = []
        self.regressions: list[str] = []
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.writes = 0
        # collection key -> elements (set members, hash fields, list items) acknowledged
        self.elements: dict[str, list[str]] = {}
        self.threads = [threading.Thread(target=self.write, args=(w,), daemon=True)
                        for w in range(WRITERS)]
        self.threads.append(threading.Thread(target=self.read, daemon=True))
        self.threads.append(threading.Thread(target=self.add_elements, daemon=True))

    def client(self, i: int) -> redis.Redis:
        return redis.Redis(host=HOST, port=self.ports[i % len(self.ports)], socket_timeout=10,
                           decode_responses=True)

    def write(self, w: int) -> None:
        r = self.client(w)
        n = 0
        while not self.stop.is_set():
            n += 1
            for k in range(KEYS_PER_WRITER):
                if self.stop.is_set():
                    break
                key = f"w{w}:k{k}"
                try:
                    r.set(key, str(n))
                except redis.RedisError as exc:
                    self.errors.append(f"SET {key} {n}: {exc}")
                    continue
                with self.lock:
                    self.acked[key] = n
                    self.writes += 1

    def add_elements(self) -> None:
        """SADD, HSET and RPUSH of new elements, each acknowledged one recorded."""
        r = self.client(2)
        n = 0
        while not self.stop.is_set():
            n += 1
            k = n % COLLECTIONS
            element = f"e{n}"
            for key, args in ((f"cs{k}", ("SADD", f"cs{k}", element)),
                              (f"ch{k}", ("HSET", f"ch{k}", element, str(n))),
                              (f"cl{k}", ("RPUSH", f"cl{k}", element))):
                try:
                    r.execute_command(*args)
                except redis.RedisError as exc:
                    self.errors.append(f"{' '.join(args)}: {exc}")
                    continue
                with self.lock:
                    self.elements.setdefault(key, []).append(element)

    def missing_elements(self, port: int) -> list[str]:
        """Acknowledged elements a read of each collection through `port` lacks."""
        r = redis.Redis(host=HOST, port=port, socket_timeout=10, decode_responses=True)
        out = []
        try:
            for key, want in sorted(self.elements.items()):
                if key.startswith("cs"):
                    got = set(r.smembers(key))
                elif key.startswith("ch"):
                    got = set(r.hgetall(key))
                else:
                    got = set(r.lrange(key, 0, -1))
                out += [f"{key} {x}" for x in want if x not in got]
        finally:
            r.close()
        return out

    def read(self) -> None:
        r = self.client(1)
        i = 0
        while not self.stop.is_set():
            i += 1
            key = f"w{i % WRITERS}:k{(i * 7) % KEYS_PER_WRITER}"
            with self.lock:
                floor = self.acked.get(key, 0)
            try:
                got = r.get(key)
            except redis.RedisError as exc:
                self.errors.append(f"GET {key}: {exc}")
                continue
            if int(got or 0) < floor:
                self.regressions.append(f"GET {key} = {got} after {floor} was acknowledged")

    def __enter__(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(30)


class Benchmark:
    """redis-benchmark SET/GET rounds against one node for as long as the test runs;
    every error line it prints is kept."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.stop = threading.Event()
        self.rounds = 0
        self.errors: list[str] = []
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stop.is_set():
            proc = subprocess.run(
                ["redis-benchmark", "-h", HOST, "-p", str(self.port), "-t", "set,get",
                 "-n", "5000", "-r", "20000", "-d", "100", "-c", "10", "-q"],
                capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
            text = proc.stdout + proc.stderr
            self.errors += [x for x in text.replace("\r", "\n").splitlines()
                            if "rror" in x or "ERR" in x]
            if proc.returncode != 0:
                self.errors.append(f"redis-benchmark exited {proc.returncode}")
            self.rounds += 1

    def __enter__(self) -> Benchmark:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(150)


def start_extra_node(cluster: Cluster, port: int, tmp: Path) -> subprocess.Popen:
    """A node with the cluster's settings on `port`, without seeds: it joins by DYN.ADMIN."""
    args = list(cluster.cmdlines[0])
    out: list[str] = []
    skip = False
    for i, a in enumerate(args):
        if skip:
            skip = False
            continue
        if a in ("--port", "--cluster-port", "--data-dir", "--seeds"):
            skip = True
            continue
        out.append(a)
        del i
    data = tmp / f"node-{port}"
    data.mkdir()
    out += ["--port", str(port), "--cluster-port", str(port + CLUSTER_PORT_OFFSET),
            "--data-dir", str(data)]
    log = open(data / "node.log", "wb")  # noqa: SIM115 (the process keeps it)
    proc = subprocess.Popen(out, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    _LIVE_PROCS.append(proc)

    def up() -> bool:
        try:
            return bool(redis.Redis(host=HOST, port=port, socket_timeout=2).ping())
        except redis.RedisError:
            return False

    wait_until(up, 30)
    return proc


def admin(port: int, *words: str) -> list[str]:
    r = redis.Redis(host=HOST, port=port, socket_timeout=20, decode_responses=True)
    try:
        return r.execute_command("DYN.ADMIN", *words)  # type: ignore[no-any-return]
    finally:
        r.close()


def dbsize(port: int) -> int:
    r = redis.Redis(host=HOST, port=port, socket_timeout=10)
    try:
        return int(r.dbsize())
    finally:
        r.close()


def records(port: int, load: Load) -> int:
    """What a transfer counts as keys: every key (DBSIZE), plus each collection's
    element records (one per element) and its applied-event summary."""
    with load.lock:
        elements = sum(len(x) for x in load.elements.values())
        collections = len(load.elements)
    return dbsize(port) + elements + collections


def info(port: int) -> dict[str, str]:
    r = redis.Redis(host=HOST, port=port, socket_timeout=10, decode_responses=True)
    try:
        raw = raw_command(r, "INFO", "dynamo")
        assert isinstance(raw, str)
        return parse_info(raw)
    finally:
        r.close()


def change(ports: list[int], via: int, *words: str) -> tuple[int, float]:
    """Stage, plan and commit one change through node `via`; wait until every node in
    `ports` sees it done. Returns (keys received by all nodes, seconds it took)."""
    before = sum(int(info(p)["transfer_keys_received"]) for p in ports)
    assert admin(via, *words)[0].startswith("staged: ")
    planned = admin(via, "PLAN")
    assert planned[0].startswith("transfers: "), planned
    t0 = time.monotonic()
    assert admin(via, "COMMIT")[0] == "committed"

    def settled() -> bool:
        infos = [info(p) for p in ports]
        return all(i["ring_change"] == "none" and i["transfers_waiting"] == "0"
                   for i in infos) and len({i["ring_epoch"] for i in infos}) == 1

    wait_until(settled, SETTLE_TIMEOUT_S)
    took = time.monotonic() - t0
    after = sum(int(info(p)["transfer_keys_received"]) for p in ports)
    return after - before, took


def test_two_joins_and_a_leave_under_load_lose_nothing(cluster_factory: ClusterFactory,
                                                       tmp_path: Path) -> None:
    c = cluster_factory()
    c.wait_healthy()
    base = free_port_range(2, offset=CLUSTER_PORT_OFFSET)
    extra_ports = [base, base + 1]
    procs = [start_extra_node(c, p, tmp_path) for p in extra_ports]
    names = [f"{HOST}:{p}" for p in [*c.ports, *extra_ports]]
    report = []
    try:
        # 20000 keys of 100 bytes to move, then writers and redis-benchmark throughout
        subprocess.run(["redis-benchmark", "-h", HOST, "-p", str(c.ports[2]), "-t", "set",
                        "-n", "20000", "-r", "20000", "-d", "100", "-q"],
                       capture_output=True, timeout=300, check=True, stdin=subprocess.DEVNULL)
        with Load([c.ports[0], c.ports[2]]) as load, Benchmark(c.ports[0]) as bench:
            wait_until(lambda: load.writes >= WRITERS * KEYS_PER_WRITER, 60)
            members = list(c.ports)
            for port in extra_ports:
                keys = records(c.ports[0], load)
                members.append(port)
                moved, took = change(members, c.ports[2], "JOIN", f"{HOST}:{port}")
                ideal = 3 * keys / len(members)  # the new node's even share of replicas
                report.append(f"join {port}: {moved} keys moved, ideal {ideal:.0f} "
                              f"({moved / ideal:.2f}x), {moved / took:.0f} keys/s")
            leaving = c.ports[1]
            ideal = 3 * records(c.ports[0], load) / len(members)  # the leaving node's share
            moved, took = change(members, c.ports[0], "LEAVE", f"{HOST}:{leaving}")
            report.append(f"leave {leaving}: {moved} keys moved, ideal {ideal:.0f} "
                          f"({moved / ideal:.2f}x), {moved / took:.0f} keys/s")
            members.remove(leaving)
            # the node that left stops by itself once it has dropped its data
            assert wait_dead(c.pids[1], 30), "the node that left is still running"
            c.up[1] = False
            time.sleep(1)
        print("\n".join(report))
        assert load.errors == []
        assert bench.errors == [] and bench.rounds > 0
        assert load.regressions == []
        assert load.writes > 0
        for port in members:
            r = redis.Redis(host=HOST, port=port, socket_timeout=10, decode_responses=True)
            keys = sorted(load.acked)
            got = r.mget(keys)
            lost = [(k, v, load.acked[k]) for k, v in zip(keys, got, strict=True)
                    if int(v or 0) < load.acked[k]]
            assert lost == [], f"node {port} misses acknowledged writes: {lost[:5]}"
            r.close()
            gone = load.missing_elements(port)
            assert gone == [], f"node {port} misses acknowledged elements: {gone[:5]}"
        assert sum(len(x) for x in load.elements.values()) > 0
        # every node agrees on the new ring: 4 members, the one that left gone
        for port in members:
            i = info(port)
            assert i["ring_members"] == "4"
            assert f"{HOST}:{leaving}" not in i["members"].split(",")
        # CLUSTER SLOTS covers every slot with the new members as masters
        slots = redis.Redis(host=HOST, port=c.ports[0]).execute_command("CLUSTER", "SLOTS")
        masters = {row[2][1] - CLUSTER_PORT_OFFSET for row in slots}
        assert masters == set(members)
        assert sum(row[1] - row[0] + 1 for row in slots) == 16384
        # a cluster-aware client follows the new ring
        rc = redis.RedisCluster(host=HOST, port=c.ports[0] + CLUSTER_PORT_OFFSET,
                                decode_responses=True)
        assert rc.get("w0:k0") is not None
        rc.close()
        assert names  # the cluster's names, for the log above
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_a_dead_node_replaced_and_another_removed_keep_every_acknowledged_write(
        cluster_factory: ClusterFactory, tmp_path: Path) -> None:
    """A node killed for good is replaced by a new one (its partitions rebuilt from the
    remaining replicas), then another is killed and removed: every write acknowledged
    before, during and after reads back from every node that stays."""
    c = cluster_factory()
    c.wait_healthy()
    base = free_port_range(2, offset=CLUSTER_PORT_OFFSET)
    spare, doomed = base, base + 1
    procs = [start_extra_node(c, p, tmp_path) for p in (spare, doomed)]
    try:
        with Load([c.ports[0], c.ports[2]]) as load:
            wait_until(lambda: load.writes >= WRITERS * KEYS_PER_WRITER, 60)
            members = [*c.ports, doomed]
            change(members, c.ports[0], "JOIN", f"{HOST}:{doomed}")
            c.kill_node(1)
            members.remove(c.ports[1])
            members.append(spare)
            planned_before = load.writes
            change(members, c.ports[2], "REPLACE", f"{HOST}:{c.ports[1]}", f"{HOST}:{spare}")
            wait_until(lambda: load.writes > planned_before + 100, 60)
            procs[1].kill()
            procs[1].wait(15)
            members.remove(doomed)
            change(members, c.ports[0], "REMOVE", f"{HOST}:{doomed}")
            done_before = load.writes
            wait_until(lambda: load.writes > done_before + 100, 60)
        keys = sorted(load.acked)
        for port in members:
            r = redis.Redis(host=HOST, port=port, socket_timeout=10, decode_responses=True)
            got = r.mget(keys)
            lost = [(k, v, load.acked[k]) for k, v in zip(keys, got, strict=True)
                    if int(v or 0) < load.acked[k]]
            assert lost == [], f"node {port} misses acknowledged writes: {lost[:5]}"
            r.close()
            gone = load.missing_elements(port)
            assert gone == [], f"node {port} misses acknowledged elements: {gone[:5]}"
            i = info(port)
            assert i["ring_members"] == "3"
            assert set(i["members"].split(",")) == {f"{HOST}:{p}" for p in members}
        assert load.regressions == []
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(15)
