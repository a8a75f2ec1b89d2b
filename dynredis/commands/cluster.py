"""CLUSTER commands: the ring described as Redis Cluster topology.

Each partition is one slot range, listed once: its owner as master, advertised at the
owner's cluster port (README "Cluster-aware clients"), and the rest of its preference
list as replicas, advertised at their main ports. Cluster-aware clients (redis-py
RedisCluster, redis-cli -c, ioredis Cluster) thus send each key straight to a replica of
it, and fan SCAN/KEYS/DBSIZE/FLUSHALL out to the cluster ports of the masters, where each
node answers for its own partitions only. Any node still accepts any key, so no MOVED
redirection is ever needed.

Why replicas are listed at the main port: a node is the master of some partitions and a
replica of others, but clients keep one role per address (redis-py keeps the first it
reads, ioredis the master one). Listed at its cluster port as a replica, a node could be
taken for a replica only and left out of fan-outs; at its main port, the replica entry is
a separate address (with its own id), and both ports serve every key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from ..cluster.ports import main_port
from ..core import obj as objmod
from ..core.keyslot import SLOTS, key_slot
from ..core.ring import partition_of_slot, slot_range
from ..resp import encode as resp
from ..resp.encode import Verbatim
from .context import Context, NodeRequests
from .databases import in_db
from .table import ERR_NOT_INT, command, dispatch, parse_int, subcommand


@lru_cache(maxsize=4096)
def node_id(name: str) -> str:
    """A stable 40-hex-digit node id (Redis Cluster's format) derived from the name."""
    return hashlib.sha1(name.encode()).hexdigest()


@lru_cache(maxsize=4096)
def replica_id(name: str) -> str:
    """The id of a node's main-port endpoint, listed as a replica in SLOTS and SHARDS."""
    return hashlib.sha1(name.encode() + b"#main").hexdigest()


def _host(name: str) -> str:
    return name.rpartition(":")[0]


def _cport(c: Context, member: str) -> int:
    return c.cluster_port_of(member)


def _owned_ranges(owners: tuple[str, ...], q: int, who: str) -> list[tuple[int, int]]:
    """Merged slot ranges of the partitions `who` owns."""
    ranges: list[tuple[int, int]] = []
    for p, owner in enumerate(owners):
        if owner != who:
            continue
        lo, hi = slot_range(p, q)
        if ranges and ranges[-1][1] + 1 == lo:
            ranges[-1] = (ranges[-1][0], hi)
        else:
            ranges.append((lo, hi))
    return ranges


def _flags(node: NodeRequests, member: str) -> str:
    flags = ["myself", "master"] if member == node.name else ["master"]
    status = node.member_status(member)
    if status == "down":
        flags.append("fail")
    elif status == "suspect":
        flags.append("fail?")  # Redis' spelling of PFAIL
    return ",".join(flags)


Member = tuple[str, int, str, str]  # (member, port, id, role) in a slot range's list


def _shards(c: Context) -> list[tuple[int, int, list[Member]]]:
    """Each partition as (first slot, last slot, [(member, port, id, role), ...]): its
    owner as master at its cluster port, then its replicas at their main ports. The
    entries are shared: one tuple per member and role."""
    node = c.node
    ring = node.ring
    down = {m: node.member_status(m) == "down" for m in ring.members}
    masters: dict[str, Member] = {}
    replicas: dict[str, Member] = {}
    out = []
    for p in range(ring.q):
        lo, hi = slot_range(p, ring.q)
        owner = ring.owners[p]
        entry = masters.get(owner)
        if entry is None:
            entry = masters[owner] = (owner, _cport(c, owner), node_id(owner), "master")
        members = [entry]
        for m in ring.preference_list(p, node.cfg.n)[1:]:
            seen_down = down.get(m)
            if seen_down is None:
                seen_down = down[m] = node.member_status(m) == "down"
            if seen_down:
                continue  # Redis leaves failed replicas out of CLUSTER SLOTS too
            entry = replicas.get(m)
            if entry is None:
                entry = replicas[m] = (m, main_port(m), replica_id(m), "replica")
            members.append(entry)
        out.append((lo, hi, members))
    return out


def cluster_slots(c: Context) -> list:
    return [[lo, hi, *([_host(m), port, nid] for m, port, nid, _ in members)]
            for lo, hi, members in _shards(c)]


def encode_slots(c: Context) -> bytes:
    """CLUSTER SLOTS' reply, the bytes of `resp.encode(cluster_slots(c), c.proto)`, with
    each member entry encoded once (not once per slot range)."""
    proto = c.proto
    done: dict[Member, bytes] = {}
    shards = _shards(c)
    parts = [b"*%d\r\n" % len(shards)]
    for lo, hi, members in shards:
        parts.append(b"*%d\r\n:%d\r\n:%d\r\n" % (2 + len(members), lo, hi))
        for member in members:
            enc = done.get(member)
            if enc is None:
                m, port, nid, _ = member
                enc = done[member] = resp.encode([_host(m), port, nid], proto)
            parts.append(enc)
    return b"".join(parts)


def cluster_nodes(c: Context) -> str:
    node = c.node
    ring = node.ring
    lines = []
    for member in sorted(node.members):
        ranges = " ".join(f"{lo}-{hi}" if lo != hi else str(lo)
                          for lo, hi in _owned_ranges(ring.owners, ring.q, member))
        link = "disconnected" if member in node.down else "connected"
        # ip:port@cport: clients use the port (the cluster port); the bus port is where
        # peers talk to each other, the node's main port.
        line = (f"{node_id(member)} {_host(member)}:{_cport(c, member)}@{main_port(member)} "
                f"{_flags(node, member)} - 0 0 {ring.epoch} {link}")
        lines.append(line + (" " + ranges if ranges else ""))
    return "\n".join(lines) + "\n"


def _shard_node(node: NodeRequests, member: Member) -> dict[str, Any]:
    """One member of a slot range, as CLUSTER SHARDS lists it."""
    m, port, nid, role = member
    zone = node.ring.zone(m)
    return {"id": nid, "port": port, "ip": _host(m), "endpoint": _host(m), "role": role,
            "replication-offset": 0,
            "health": "fail" if node.member_status(m) == "down" else "online",
            **({"zone": zone} if zone else {})}


def cluster_shards(c: Context) -> list:
    return [{"slots": [lo, hi], "nodes": [_shard_node(c.node, m) for m in members]}
            for lo, hi, members in _shards(c)]


def encode_shards(c: Context) -> bytes:
    """CLUSTER SHARDS' reply, the bytes of `resp.encode(cluster_shards(c), c.proto)`,
    with each member entry encoded once: encoding 256 ranges' entries one by one took
    ~90 ms, and the reply is built again at every change of the ring or of a member's
    state."""
    proto = c.proto
    node = c.node
    done: dict[Member, bytes] = {}
    shards = _shards(c)
    head = (b"%2\r\n" if proto >= 3 else b"*4\r\n") + resp.encode("slots", proto)
    nodes = resp.encode("nodes", proto)
    parts = [b"*%d\r\n" % len(shards)]
    for lo, hi, members in shards:
        parts.append(b"%b*2\r\n:%d\r\n:%d\r\n%b*%d\r\n" % (head, lo, hi, nodes, len(members)))
        for member in members:
            enc = done.get(member)
            if enc is None:
                enc = done[member] = resp.encode(_shard_node(node, member), proto)
            parts.append(enc)
    return b"".join(parts)


def cluster_info(node: NodeRequests) -> str:
    """CLUSTER INFO. The state stays ok while members are down: any node serves any key
    (sloppy quorum); slots whose owner is suspect or down count as pfail or fail."""
    ring = node.ring
    per_partition = SLOTS // ring.q
    status = {m: node.member_status(m) for m in node.members}
    pfail = sum(per_partition for o in ring.owners if status.get(o) == "suspect")
    fail = sum(per_partition for o in ring.owners if status.get(o) == "down")
    info = {
        "cluster_state": "ok", "cluster_slots_assigned": SLOTS,
        "cluster_slots_ok": SLOTS - pfail - fail, "cluster_slots_pfail": pfail,
        "cluster_slots_fail": fail, "cluster_known_nodes": len(node.members),
        "cluster_size": len(ring.members), "cluster_current_epoch": ring.epoch,
        "cluster_my_epoch": ring.epoch,
        "cluster_nodes_down": sum(1 for s in status.values() if s == "down"),
    }
    return "".join(f"{k}:{v}\r\n" for k, v in info.items())


def _keys_in_slot(node: NodeRequests, slot: int) -> list[bytes]:
    p = partition_of_slot(slot, node.ring.q)
    now = node.now
    # database 0's keys only: a cluster has no other (commands/databases.py)
    return [key for key, head in node.local.scan_heads(p)
            if key_slot(key) == slot and in_db(key, 0) == key
            and objmod.read_expiry(head, now) is not None]


@command("cluster", -2, ("stale",), group="cluster",
         summary="Describes the ring as Redis Cluster topology.", since="3.0.0")
def cmd_cluster(c: Context, args: list[bytes]) -> bytes | None:
    return dispatch("cluster", c, args)


def _cluster_sub(name: str, arity: int) -> Any:
    return subcommand("cluster", name, arity, ("stale",))


def _topology(c: Context) -> tuple:
    """Everything SLOTS, SHARDS and NODES depend on."""
    node = c.node
    return (node.ring, node.cfg.n, frozenset(node.down),
            tuple((m, node.member_status(m), c.cluster_port_of(m))
                  for m in sorted(node.members)))


def _cached(c: Context, sub: str, build: Callable[[], bytes]) -> bytes:
    """The topology replies are kept (per subcommand and protocol) with the state they
    describe, and built again only when it changed (the ring, the members' status or
    their cluster ports): 500 CLUSTER SHARDS in one write took a node 13 s to build."""
    state = _topology(c)
    key = (sub, c.proto)
    replies = c.topology_replies
    hit = replies.get(key)
    if hit is not None and hit[0] == state:
        return hit[1]
    reply = build()
    replies[key] = (state, reply)
    return reply


@_cluster_sub("slots", 2)
def cmd_cluster_slots(c: Context, args: list[bytes]) -> bytes:
    return _cached(c, "slots", lambda: encode_slots(c))


@_cluster_sub("nodes", 2)
def cmd_cluster_nodes(c: Context, args: list[bytes]) -> bytes:
    return _cached(c, "nodes", lambda: resp.encode(Verbatim(cluster_nodes(c)), c.proto))


@_cluster_sub("shards", 2)
def cmd_cluster_shards(c: Context, args: list[bytes]) -> bytes:
    return _cached(c, "shards", lambda: encode_shards(c))


@_cluster_sub("myid", 2)
def cmd_cluster_myid(c: Context, args: list[bytes]) -> bytes:
    return resp.bulk(node_id(c.node.name).encode())


@_cluster_sub("keyslot", 3)
def cmd_cluster_keyslot(c: Context, args: list[bytes]) -> bytes:
    return resp.integer(key_slot(args[2]))


@_cluster_sub("info", 2)
def cmd_cluster_info(c: Context, args: list[bytes]) -> bytes:
    return resp.encode(Verbatim(cluster_info(c.node)), c.proto)


@_cluster_sub("countkeysinslot", 3)
def cmd_cluster_countkeysinslot(c: Context, args: list[bytes]) -> bytes:
    slot = parse_int(args[2])
    if slot is None:
        return ERR_NOT_INT
    if not 0 <= slot < SLOTS:
        return resp.error("ERR Invalid slot")
    return resp.integer(len(_keys_in_slot(c.node, slot)))


@_cluster_sub("getkeysinslot", 4)
def cmd_cluster_getkeysinslot(c: Context, args: list[bytes]) -> bytes:
    slot, count = parse_int(args[2]), parse_int(args[3])
    if slot is None or count is None:
        return ERR_NOT_INT
    if not 0 <= slot < SLOTS or count < 0:
        return resp.error("ERR Invalid slot or number of keys")
    return resp.encode(_keys_in_slot(c.node, slot)[:count], c.proto)


@command("readonly", 1, ("fast", "loading", "stale"), group="cluster",
         summary="Lets reads go to replicas (every node serves every key anyway).")
def cmd_readonly(c: Context, args: list[bytes]) -> bytes:
    return resp.OK


@command("readwrite", 1, ("fast", "loading", "stale"), group="cluster",
         summary="Back to default routing (every node serves every key anyway).")
def cmd_readwrite(c: Context, args: list[bytes]) -> bytes:
    return resp.OK
