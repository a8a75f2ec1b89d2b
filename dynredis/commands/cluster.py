"""CLUSTER commands: the ring described as Redis Cluster topology.

Each partition is one slot range, listed once, with its owner as master (CLUSTER SHARDS
also lists the rest of its preference list as replicas), so cluster-aware clients
(redis-py RedisCluster, redis-cli -c, ioredis Cluster) send each key straight to a
replica of it. Any node still
accepts any key, so no MOVED redirections are ever needed.
"""

from __future__ import annotations

import hashlib
from typing import Any

from ..core import obj as objmod
from ..core.keyslot import SLOTS, key_slot
from ..core.ring import slot_range
from ..resp import encode as resp
from ..resp.encode import Verbatim
from .table import ERR_NOT_INT, command, err_subcommand, parse_int


def node_id(name: str) -> str:
    """A stable 40-hex-digit node id (Redis Cluster's format) derived from the name."""
    return hashlib.sha1(name.encode()).hexdigest()


def _addr(name: str) -> tuple[str, int]:
    host, _, port = name.rpartition(":")
    return host, int(port)


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


def _flags(node: Any, member: str) -> str:
    flags = ["myself", "master"] if member == node.name else ["master"]
    status = node.member_status(member)
    if status == "down":
        flags.append("fail")
    elif status == "suspect":
        flags.append("fail?")
    return ",".join(flags)


def cluster_slots(node: Any) -> list:
    """Each partition's slot range with its owner as master.

    Replicas are not listed here: every node is the master of some partitions and a
    replica of others, and clients that read roles from CLUSTER SLOTS (redis-py) keep
    a node's last-seen role, so listing replicas would hide masters from their fan-out
    (DBSIZE, KEYS, SCAN). CLUSTER SHARDS lists the full preference lists.
    """
    ring = node.ring
    out = []
    for p in range(ring.q):
        lo, hi = slot_range(p, ring.q)
        host, port = _addr(ring.owners[p])
        out.append([lo, hi, [host, port, node_id(ring.owners[p])]])
    return out


def cluster_nodes(node: Any) -> str:
    ring = node.ring
    lines = []
    for member in sorted(node.members):
        host, port = _addr(member)
        ranges = " ".join(f"{lo}-{hi}" if lo != hi else str(lo)
                          for lo, hi in _owned_ranges(ring.owners, ring.q, member))
        link = "disconnected" if member in node.down else "connected"
        line = (f"{node_id(member)} {host}:{port}@{port + 10000} {_flags(node, member)} - "
                f"0 0 {ring.epoch} {link}")
        lines.append(line + (" " + ranges if ranges else ""))
    return "\n".join(lines) + "\n"


def cluster_shards(node: Any) -> list:
    ring = node.ring
    shards = []
    for p in range(ring.q):
        lo, hi = slot_range(p, ring.q)
        members = []
        for i, member in enumerate(ring.preference_list(p, node.cfg.n)):
            host, port = _addr(member)
            members.append({
                "id": node_id(member), "port": port, "ip": host, "endpoint": host,
                "role": "master" if i == 0 else "replica", "replication-offset": 0,
                "health": "fail" if node.member_status(member) == "down" else "online",
            })
        shards.append({"slots": [lo, hi], "nodes": members})
    return shards


def _keys_in_slot(node: Any, slot: int) -> list[bytes]:
    p = slot * node.ring.q // SLOTS
    now = node.now
    return [key for key, enc in node.local.scan(p)
            if key_slot(key) == slot and objmod.read_value(objmod.decode(enc), now) is not None]


@command("cluster", -2, ("stale",), group="cluster",
         summary="Describes the ring as Redis Cluster topology.", since="3.0.0")
def cmd_cluster(c: Any, args: list[bytes]) -> bytes:
    node = c.node
    sub = args[1].upper()
    n = len(args)
    if sub == b"SLOTS" and n == 2:
        return resp.encode(cluster_slots(node), c.proto)
    if sub == b"NODES" and n == 2:
        return resp.encode(Verbatim(cluster_nodes(node)), c.proto)
    if sub == b"SHARDS" and n == 2:
        return resp.encode(cluster_shards(node), c.proto)
    if sub == b"MYID" and n == 2:
        return resp.bulk(node_id(node.name).encode())
    if sub == b"KEYSLOT" and n == 3:
        return resp.integer(key_slot(args[2]))
    if sub == b"INFO" and n == 2:
        ring = node.ring
        down = sum(1 for m in node.members if node.member_status(m) == "down")
        info = {
            "cluster_state": "ok", "cluster_slots_assigned": SLOTS,
            "cluster_slots_ok": SLOTS, "cluster_slots_pfail": 0,
            "cluster_slots_fail": 0, "cluster_known_nodes": len(node.members),
            "cluster_size": len(ring.members), "cluster_current_epoch": ring.epoch,
            "cluster_my_epoch": ring.epoch, "cluster_nodes_down": down,
        }
        text = "".join(f"{k}:{v}\r\n" for k, v in info.items())
        return resp.encode(Verbatim(text), c.proto)
    if sub in (b"COUNTKEYSINSLOT", b"GETKEYSINSLOT"):
        want = 3 if sub == b"COUNTKEYSINSLOT" else 4
        if n != want:
            return resp.error(
                f"ERR wrong number of arguments for 'cluster|{sub.decode().lower()}' command")
        slot = parse_int(args[2])
        if slot is None or not 0 <= slot < SLOTS:
            return resp.error("ERR Invalid slot")
        keys = _keys_in_slot(node, slot)
        if sub == b"COUNTKEYSINSLOT":
            return resp.integer(len(keys))
        count = parse_int(args[3])
        if count is None or count < 0:
            return ERR_NOT_INT if count is None else resp.error(
                "ERR Invalid number of keys")
        return resp.encode(keys[:count], c.proto)
    if sub in (b"SLOTS", b"NODES", b"SHARDS", b"MYID", b"KEYSLOT", b"INFO"):
        return resp.error(
            f"ERR wrong number of arguments for 'cluster|{sub.decode().lower()}' command")
    return err_subcommand(args[1], "cluster")


@command("readonly", 1, ("fast", "loading", "stale"), group="cluster",
         summary="Lets reads go to replicas (every node serves every key anyway).")
def cmd_readonly(c: Any, args: list[bytes]) -> bytes:
    return resp.OK


@command("readwrite", 1, ("fast", "loading", "stale"), group="cluster",
         summary="Back to default routing (every node serves every key anyway).")
def cmd_readwrite(c: Any, args: list[bytes]) -> bytes:
    return resp.OK
