"""INFO: the sections Redis tools read, and a `dynamo` section of the node's own.

The server supplies its figures (`Context.figures()`: counters, ports, the build), the
node its settings, stats and membership; the sections and their text are built here.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from ..core.ring import Ring
from ..resp import encode as resp
from ..resp.encode import Verbatim
from .context import Context, NodeRequests, ServerFigures
from .table import command

REDIS_VERSION = "7.0.15"
DYNREDIS_VERSION = "0.1.0"
DEFAULT_SECTIONS = ("server", "clients", "stats", "cluster", "keyspace", "dynamo")

Section = Callable[[ServerFigures, NodeRequests], dict[str, Any]]


def server_section(f: ServerFigures, node: NodeRequests) -> dict[str, Any]:
    return {
        "redis_version": REDIS_VERSION,
        "dynredis_version": DYNREDIS_VERSION,
        # compiled (mypyc) or pure Python, and why (see dynredis/native.py)
        "dynredis_build": f.build,
        "redis_mode": "cluster",
        "os": os.uname().sysname,
        "arch_bits": 64,
        "process_id": os.getpid(),
        "run_id": f.run_id,
        "tcp_port": f.port,
        "uptime_in_seconds": int(time.time() - f.started),
        "executable": "dynredis",
    }


def clients_section(f: ServerFigures, node: NodeRequests) -> dict[str, Any]:
    return {"connected_clients": f.connected_clients, "maxclients": f.maxclients,
            "blocked_clients": len(node.blocking.waiting)}


def stats_section(f: ServerFigures, node: NodeRequests) -> dict[str, Any]:
    s = node.stats
    return {
        "total_connections_received": f.connections_received,
        "total_commands_processed": f.commands_processed,
        "loop_flushes": f.flushes,
        "peer_writes": f.peer_writes,
        "client_writes": f.client_writes,
        "client_read_pauses": f.client_read_pauses,
        "rejected_connections": f.rejected_connections,
        "evicted_clients": f.evicted_clients,
        "pubsub_channels": f.pubsub_channels,
        "pubsub_patterns": f.pubsub_patterns,
        "pubsubshard_channels": f.pubsubshard_channels,
        "pubsub_messages_delivered": f.pubsub_delivered,
        "coordinated_gets": s.gets,
        "coordinated_puts": s.puts,
        "replica_gets": s.replica_gets,
        "replica_puts": s.replica_puts,
        "forwarded": s.forwarded,
        "read_repairs": s.read_repairs,
        "noquorum_errors": s.noquorum,
        "timeouts": s.timeouts,
        "sibling_warnings": s.sibling_warnings,
        "sibling_refusals": s.sibling_refusals,
    }


def cluster_section(f: ServerFigures, node: NodeRequests) -> dict[str, Any]:
    # Every node is part of a cluster: `redis-cli --cluster check` and cluster clients
    # look for this (CLUSTER INFO has the details).
    return {"cluster_enabled": 1}


def min_replica_zones(ring: Ring, n: int) -> int:
    """The fewest distinct zones among any partition's replicas (a node without a zone
    counts as one of its own)."""
    return min(len({ring.zone(x) or "\0" + x for x in pref})
               for pref in ring.preference_lists(n))


def owned_counts(ring: Ring) -> list[tuple[str, int]]:
    """Each member with the number of partitions it owns (is first in the list of)."""
    counts = dict.fromkeys(ring.members, 0)
    for owner in ring.owners:
        counts[owner] += 1
    return sorted(counts.items())


def dynamo_section(f: ServerFigures, node: NodeRequests) -> dict[str, Any]:
    ring = node.ring
    cfg = node.cfg
    stats = node.stats
    members = sorted(node.members)
    status = {m: node.member_status(m) for m in members}
    blocking = node.blocking
    watches = node.watches
    ae = node.anti_entropy
    transfers = node.transfers
    return {
        "node_name": node.name,
        "zone": cfg.zone,
        # each member's zone as the ring records it, and the fewest distinct zones
        # among any partition's N replicas
        "zones": ",".join(f"{m}={z}" for m, z in ring.zones),
        "replica_zones_min": min_replica_zones(ring, cfg.n),
        "bind": f.bind,
        "actor_id": f.actor,
        "n": cfg.n,
        "r": cfg.r,
        "w": cfg.w,
        "timeout_ms": cfg.timeout_ms,
        "ring_size": ring.q,
        "ring_epoch": ring.epoch,
        "ring_claimant": ring.claimant,
        "ring_members": len(ring.members),
        "members": ",".join(members),
        "members_up": ",".join(m for m in members if status[m] == "up"),
        "members_suspect": ",".join(m for m in members if status[m] == "suspect"),
        "members_down": ",".join(m for m in members if status[m] == "down"),
        "local_keys": node.local.count(),
        "object_cache_keys": len(node.local.cache),
        "object_cache_bytes": node.local.cache.held,
        "ae_exchanges": stats.ae_exchanges,
        "ae_keys_compared": stats.ae_keys_compared,
        "ae_keys_repaired": stats.ae_keys_repaired,
        "reaped": stats.reaped,
        "hints_stored": node.hints,
        "hints_created": stats.hints_created,
        "hints_delivered": stats.hints_delivered,
        "owned_partitions": len(node.owned_partitions()),
        # a membership change in progress (DYN.ADMIN): its transfers not confirmed
        # yet, ring-wide, and this node's share of them
        "ring_change": "in progress" if ring.next else "none",
        "members_joining": ",".join(sorted(set(ring.next) - set(ring.owners))),
        "members_leaving": ",".join(sorted(set(ring.owners) - set(ring.next))
                                    if ring.next else ()),
        "transfers_pending": len(ring.pending),
        "transfers_waiting": transfers.waiting,
        "transfers_in_flight": transfers.active,
        "transfer_keys_sent": transfers.keys_sent,
        "transfer_bytes_sent": transfers.bytes_sent,
        "transfer_keys_received": transfers.keys_received,
        "left": int(node.membership.left),
        # every member's count of partitions it owns, as this node's ring has it
        "partitions_owned": ",".join(f"{m}={c}" for m, c in owned_counts(ring)),
        "handoffs_in_flight": len(node.handoff.inflight),
        # the last anti-entropy exchange that ran to its end: how long ago, with whom
        "ae_last_exchange_ms_ago": -1 if ae.last_done < 0 else node.now - ae.last_done,
        "ae_last_exchange_peer": ae.last_peer,
        "ae_last_exchange_partition": ae.last_partition,
        "cluster_port": f.cluster_port,
        "engine": f.engine,
        "durability": f.durability,
        "pending_requests": node.in_flight(),
        # 1 until the node has heard from its peers (data commands: -LOADING)
        "loading": int(f.loading),
        "tls_port": f.tls_port,
        "peer_links_accepted": f.peer_links_accepted,
        "peer_links_refused": f.peer_links_refused,
        # blocking pops (core/blocking.py, core/watches.py)
        "blocked_keys": len(blocking.queues),
        "blocked_attempts": blocking.attempts,
        "blocked_served": blocking.served,
        "blocked_timeouts": blocking.timeouts,
        "keys_watched": len(watches.listeners),
        "watches_held": sum(len(w) for w in watches.watchers.values()),
        "watch_notifications_sent": watches.notified,
    }


SECTIONS: dict[str, Section] = {
    "server": server_section,
    "clients": clients_section,
    "stats": stats_section,
    "cluster": cluster_section,
    "dynamo": dynamo_section,
}


def render(wanted: list[str], fields_of: Callable[[str], dict[str, Any] | None]) -> str:
    """INFO's text: each wanted section that exists, as `# Name` and `field:value`
    lines."""
    parts = []
    for name in wanted:
        fields = fields_of(name)
        if fields is None:
            continue
        lines = [f"# {name.capitalize()}"] + [f"{k}:{v}" for k, v in fields.items()]
        parts.append("\r\n".join(lines) + "\r\n")
    return "\r\n".join(parts)


def keyspace_line(figures: tuple[int, int, int]) -> dict[str, Any]:
    """The keyspace section from a walk's (keys, keys with a TTL, their TTLs' sum)."""
    keys, expires, ttl_total = figures
    if not keys:
        return {}
    avg_ttl = ttl_total // expires if expires else 0
    return {"db0": f"keys={keys},expires={expires},avg_ttl={avg_ttl}"}


@command("info", -1, ("loading", "stale"), group="server", summary="Returns information and statistics about the server.")
def cmd_info(c: Context, args: list[bytes]) -> bytes | None:
    wanted = [a.decode("utf-8", "replace").lower() for a in args[1:]]
    if not wanted or any(w in ("all", "everything", "default") for w in wanted):
        wanted = list(DEFAULT_SECTIONS)
    node = c.node
    proto = c.proto

    def reply(keyspace: dict[str, Any]) -> bytes:
        figures = c.figures()  # as they are when the reply is made

        def fields_of(name: str) -> dict[str, Any] | None:
            if name == "keyspace":
                return keyspace
            section = SECTIONS.get(name)
            return section(figures, node) if section is not None else None

        return resp.encode(Verbatim(render(wanted, fields_of)), proto)

    if "keyspace" not in wanted:
        return reply({})
    slot = c.defer()

    def counted(result: tuple) -> None:
        # Like DBSIZE: the whole cluster on the main port, the node's own partitions on
        # its cluster port. A failed walk leaves the section empty rather than the reply.
        e, figures = result
        slot.set(reply(keyspace_line(figures) if e is None else {}))

    c.keyscan.keyspace(c.cluster_view, counted)
    return None
