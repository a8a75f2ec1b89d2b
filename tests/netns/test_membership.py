"""Growing and shrinking the cluster across hosts: the compose file's three nodes, each
on its own address in its own namespace, take a 4th and a 5th node (started as the
image starts a node, on addresses of their own, in zones of their own), then one of the
first three retires, each change staged, planned and committed through a node from the
control host (`redis-cli DYN.ADMIN`, `dynredis admin`), while clients in the nodes'
namespaces write and read, recording what was acknowledged. The moment each change is
committed (its transfers starting) the network fails, for a few seconds: the joining
node is cut off from the node sending it the most partitions, the next one's packets to
its main sender are dropped (one way), the leaving node is cut off from its main
receiver.

Afterwards: the checker over the history (no acknowledged write lost, no value nobody
wrote) against the state every remaining member converges to; every member counts the
same keys, none of those written before the changes missing; the node that left has
stopped by itself (and went on answering its client until then); CLUSTER SLOTS and
NODES from every member list exactly the members' announced addresses, every partition
with N distinct replicas; no node logged an error. The data moved per change (INFO's
transfer_keys_received) is printed against the ideal share (as in
tests/integration/test_membership_changes.py), with the transfer rate and the time the
change took to settle.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .checker import Op
from .netcluster import REPLICAS, NetCluster, wait_for
from .topology import another_node
from .workload import Clients

PRELOAD_KEYS = 12_000  # keys of 100 bytes written before the changes, for them to move
CUT_S = 4.0  # how long each change's fault lasts
SETTLE_TIMEOUT_S = 90.0
SLOTS = 16384


@dataclass
class Step:
    took: float  # commit to settled, seconds
    a: str  # the nodes the fault parted
    b: str
    waiting: int  # transfers they still had to send or confirm when it healed


@dataclass
class Moved:
    what: str
    keys: int  # the cluster's keys when the change began
    moved: int  # keys the members received by transfer
    ideal: float
    step: Step

    def line(self) -> str:
        took = self.step.took
        return (f"{self.what}: {self.moved} keys moved, ideal {self.ideal:.0f} "
                f"({self.moved / self.ideal:.2f}x), settled in {took:.1f} s "
                f"({self.moved / took:.0f} keys/s; {CUT_S:.0f} s of it {self.step.a} and "
                f"{self.step.b} parted, {self.step.waiting} transfers of theirs left when "
                "it healed)")


def client_summary(ops: list[Op]) -> str:
    """Per client: operations acknowledged, failed (an error reply) and unknown (a
    timeout, a lost or refused connection), and the errors' kinds."""
    lines = []
    for cid in sorted({op.client for op in ops}):
        mine = [op for op in ops if op.client == cid]
        count = Counter(op.status for op in mine)
        errors = Counter(op.err.split(" ")[0] for op in mine if op.status != "ok")
        lines.append(f"{cid}: {count['ok']} ok, {count['fail']} failed, {count['info']} "
                     f"unknown; errors: {dict(errors)}")
    return "\n".join(lines)


def received(c: NetCluster, names: list[str]) -> int:
    return sum(int(c.info(name)["transfer_keys_received"]) for name in names)


def dbsize(c: NetCluster, name: str) -> int:
    return int(c.cli(name, "DBSIZE").stdout.strip())


def settled(c: NetCluster, members: list[str]) -> bool:
    """Every member has the ring with exactly `members`, no change moving, nothing of it
    to send, one epoch."""
    infos = [c.info(name) for name in members]
    return all(i.get("ring_change") == "none" and i.get("transfers_waiting") == "0"
               and i.get("ring_members") == str(len(members)) for i in infos) \
        and len({i.get("ring_epoch") for i in infos}) == 1


def moves(c: NetCluster, plan: str) -> dict[tuple[str, str], int]:
    """The plan's transfers: (source, target) node names -> partitions."""
    name = {c.addr(x): x for x in c.specs}
    out = {}
    for line in plan.splitlines():
        found = re.fullmatch(r"\s*(\S+) -> (\S+): (\d+) partitions", line)
        if found:
            out[(name[found[1]], name[found[2]])] = int(found[3])
    return out


def busiest(pairs: dict[tuple[str, str], int], end: str, role: int) -> str:
    """The node at the other end of `end`'s largest transfer (`end` as target: role 1;
    as source: role 0)."""
    mine = {pair: k for pair, k in pairs.items() if pair[role] == end}
    assert mine, pairs
    return max(mine, key=lambda pair: mine[pair])[1 - role]


def change(c: NetCluster, stage: Callable[[], None], commit: Callable[[], str],
           members: list[str],
           fault: Callable[[dict[tuple[str, str], int]], tuple[str, str]]) -> Step:
    """Stage a change and commit it; the moment it is committed (its transfers
    starting), make `fault(the plan's transfers)` -> the nodes it parts; hold it CUT_S,
    heal; wait until `members` settle."""
    stage()
    plan = commit()
    t0 = time.monotonic()
    a, b = fault(moves(c, plan))
    try:
        # the fault caught the change moving (it needs every transfer confirmed)
        assert any(c.info(x).get("ring_change") == "in progress" for x in members), \
            "the change was over before the fault"
        time.sleep(CUT_S)
        # what the parted nodes still had to send when the network healed
        left = sum(int(c.info(x).get("transfers_waiting") or 0) for x in (a, b))
    finally:
        c.lab.heal()
    wait_for(lambda: settled(c, members), SETTLE_TIMEOUT_S, "the change to settle")
    return Step(time.monotonic() - t0, a, b, left)


def cut(c: NetCluster, a: str, b: str, both: bool = True) -> tuple[str, str]:
    c.lab.cut(a, b, both)
    return a, b


def by_redis_cli(c: NetCluster, via: str, *words: str) -> Callable[[], None]:
    def stage() -> None:
        out = c.cli(via, "DYN.ADMIN", *words).stdout
        assert out.startswith("staged: "), out
    return stage


def commit_by_redis_cli(c: NetCluster, via: str) -> Callable[[], str]:
    def commit() -> str:
        plan = c.cli(via, "DYN.ADMIN", "PLAN").stdout
        assert plan.startswith("transfers: "), plan
        out = c.cli(via, "DYN.ADMIN", "COMMIT").stdout
        assert out.startswith("committed"), out
        return out
    return commit


def by_admin_tool(c: NetCluster, via: str, *words: str) -> Callable[[], None]:
    def stage() -> None:
        proc = c.admin(via, *words)
        assert proc.returncode == 0 and proc.stdout.startswith("staged: "), proc
    return stage


def commit_by_admin_tool(c: NetCluster, via: str) -> Callable[[], str]:
    def commit() -> str:
        plan = c.admin(via, "plan")
        assert plan.returncode == 0 and plan.stdout.startswith("transfers: "), plan
        proc = c.admin(via, "commit")
        assert proc.returncode == 0 and proc.stdout.startswith("committed"), proc
        return proc.stdout
    return commit


def test_two_joins_and_a_leave_across_hosts_with_cuts_lose_nothing(
        net_cluster: NetCluster, tmp_path: Path) -> None:
    c = net_cluster
    first = c.specs["node1"]
    # Data to move: redis-benchmark from the control host.
    bench = c.lab.run("ctl", ["redis-benchmark", "-h", c.specs["node2"].ip, "-p",
                              str(c.specs["node2"].port), "-t", "set", "-n",
                              str(PRELOAD_KEYS * 2), "-r", str(PRELOAD_KEYS), "-d", "100",
                              "-P", "16", "-q"], timeout=300)
    assert bench.returncode == 0, bench.stderr
    preloaded = dbsize(c, "node1")
    report: list[Moved] = []
    load = Clients(c, tmp_path, "mem", [("node1", "node1", 0, 0), ("node2", "node2", 0, 0),
                                        ("node3", "node3", 0, 0)], own=30)
    with load:
        time.sleep(1.0)
        # 1. node4 joins (DYN.ADMIN by redis-cli through node2); cut off from a sender
        # both ways while its partitions stream.
        c.add_node(another_node(first, "node4", "172.28.0.14", "zone-d"))
        members = [*c.names[:3], "node4"]
        keys = dbsize(c, "node2")
        before = received(c, members)
        step = change(c, by_redis_cli(c, "node2", "JOIN", c.addr("node4")),
                      commit_by_redis_cli(c, "node2"), members,
                      lambda plan: cut(c, "node4", busiest(plan, "node4", 1)))
        report.append(Moved("join node4 (cut off from a sender, both ways)", keys,
                            received(c, members) - before, REPLICAS * keys / len(members),
                            step))
        # 2. node5 joins (`dynredis admin` through node3); its packets to a sender are
        # dropped (one way: the sender's batches arrive, their acknowledgements do not).
        c.add_node(another_node(first, "node5", "172.28.0.15", "zone-e"))
        members = [*members, "node5"]
        keys = dbsize(c, "node3")
        before = received(c, members)
        step = change(c, by_admin_tool(c, "node3", "join", c.addr("node5")),
                      commit_by_admin_tool(c, "node3"), members,
                      lambda plan: cut(c, "node5", busiest(plan, "node5", 1), both=False))
        report.append(Moved("join node5 (its packets to a sender dropped)", keys,
                            received(c, members) - before, REPLICAS * keys / len(members),
                            step))
        # 3. node1 leaves (`dynredis admin` through node2): cut off from one receiver
        # while it hands its partitions off; then it stops by itself.
        keys = dbsize(c, "node2")
        ideal = REPLICAS * keys / len(members)  # the leaving node's share
        leave_at = time.monotonic()
        members = [x for x in members if x != "node1"]
        before = received(c, members)
        step = change(c, by_admin_tool(c, "node2", "leave", c.addr("node1")),
                      commit_by_admin_tool(c, "node2"), members,
                      lambda plan: cut(c, "node1", busiest(plan, "node1", 0)))
        report.append(Moved("leave node1 (cut off from a receiver, both ways)", keys,
                            received(c, members) - before, ideal, step))
        flipped = time.monotonic()
        c.depart("node1")
        time.sleep(1.0)
    print("\n" + "\n".join(m.line() for m in report))

    outcome = load.outcome()
    print(client_summary(outcome.ops))
    assert not outcome.problems, "\n".join(outcome.problems[:20])
    acked = [op for op in outcome.ops if op.op == "set" and op.status == "ok"]
    assert len(acked) > 100
    # the clients of the nodes that stay kept being served, through the leave too
    for cid in ("mem-c1", "mem-c2"):
        assert any(op.client == cid and op.t0 > leave_at for op in acked), cid
    # node1 went on serving its client after it was out of the ring, until it stopped
    # (it forwards every request; then its client's connection is refused)
    last = [op for op in outcome.ops if op.client == "mem-c0" and op.t0 > flipped]
    assert [op for op in last if op.status == "fail"] == [], client_summary(last)
    assert any(op.status == "ok" for op in last)

    # every key reads back through every member: a count walks each partition at one
    # of its replicas (the member asked, when it is one), all answer the same, and no
    # key written before the changes went missing
    sizes = {name: dbsize(c, name) for name in c.names}
    assert len(set(sizes.values())) == 1 and sizes["node2"] >= preloaded, (sizes, preloaded)

    final = {c.specs[x].ip for x in c.names}
    assert c.procs["node1"].poll() is not None
    for name in c.names:
        nodes = c.cli(name, "CLUSTER", "NODES").stdout
        listed = {line.split()[1].partition(":")[0] for line in nodes.splitlines() if line}
        assert listed == final, (name, nodes)
        assert all(f" {c.specs[x].ip}:17000@7000 " in nodes for x in c.names), nodes
        slots = c.probe("cmd", name, "CLUSTER", "SLOTS")
        assert isinstance(slots, list)
        assert sum(row[1] - row[0] + 1 for row in slots) == SLOTS
        for row in slots:
            hosts = [entry[0] for entry in row[2:]]
            # every partition: N replicas, distinct, all of them members
            assert len(hosts) == REPLICAS and len(set(hosts)) == REPLICAS, (name, row)
            assert set(hosts) <= final, (name, row)
        info = c.info(name)
        owned = {k: int(v) for k, v in (x.split("=") for x in
                                        info["partitions_owned"].split(","))}
        assert set(owned) == {c.addr(x) for x in c.names}, info["partitions_owned"]
        # whole partitions, each member within one of an even share
        q = int(info["ring_size"])
        assert sum(owned.values()) == q
        assert all(abs(k - q / len(owned)) <= 1 for k in owned.values()), owned
        assert info["replica_zones_min"] == str(REPLICAS)  # four zones now
    # every node stops cleanly (docker stop: SIGTERM), nothing in any log went wrong
    for name in c.names:
        c.lab.stop(c.procs[name])
    for name in c.specs:
        text = c.log_path(name).read_text(errors="replace")
        assert "Traceback" not in text and " ERROR " not in text, c.log_tail(name, 60)
    # each change moved about the share it should (Dynamo's strategy 3: whole
    # partitions; the goal is at most 1.2x; forwarded writes are not counted)
    for m in report:
        assert m.moved >= 0.8 * m.ideal, m.line()
