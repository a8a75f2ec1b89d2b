"""Which port each member serves cluster-aware clients on: its "cluster port".

A node listens on its main port (plain clients and peer links; keyspace commands there
are cluster-wide) and on a cluster port (keyspace commands cover only the partitions
the node owns, as a Redis Cluster master covers its slots). CLUSTER SLOTS / SHARDS /
NODES advertise the cluster ports, so a node must know its peers': each node tells
the others its own with a ("cport", port) message (0: it has none), and until it has
heard one it assumes the peer's main port plus this node's own offset (`dynredis
cluster --cluster-port-offset` gives every node the same one), or the default, main port
+ 10000, when this node has no cluster port.

Pure: `announce()` only queues messages through `node.send`; the driver calls it
periodically.
"""

from __future__ import annotations

from typing import Any

from ..core import messages as m

OFFSET = 10000


def main_port(member: str) -> int:
    return int(member.rpartition(":")[2])


def default_cluster_port(port: int) -> int:
    """The cluster port a node has unless told otherwise (0 when it would not fit)."""
    return port + OFFSET if port + OFFSET <= 65535 else 0


class ClusterPorts:
    def __init__(self, node: Any, mine: int) -> None:
        self.node = node
        self.mine = mine
        self.known: dict[str, int] = {node.name: mine}
        self.offset = mine - main_port(node.name) if mine else OFFSET
        node.register(m.CLUSTER_PORT, self._on_cport)

    def of(self, member: str) -> int:
        """The port cluster-aware clients should use for `member` (its main port when
        it has no cluster port)."""
        port = self.known.get(member)
        if port is None:
            port = self._guess(main_port(member))
        return port or main_port(member)

    def _guess(self, port: int) -> int:
        """A peer not heard from yet: its main port plus this node's offset."""
        guess = port + self.offset
        return guess if 0 < guess <= 65535 else 0

    def announce(self) -> None:
        """Tell every member (the driver calls this periodically)."""
        for peer in self.node.members:
            self.tell(peer)

    def tell(self, peer: str) -> None:
        """Tell one peer (e.g. as soon as a link to it comes up)."""
        if peer != self.node.name:
            self.node.send(peer, m.cluster_port(self.mine))

    def _on_cport(self, src: str, msg: tuple) -> None:
        try:
            self.known[src] = int(msg[1])
        except (IndexError, TypeError, ValueError):
            return
