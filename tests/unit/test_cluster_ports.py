"""The cluster port a node advertises for each member (CLUSTER SLOTS / SHARDS / NODES)."""

from __future__ import annotations

from dynredis.cluster.ports import ClusterPorts
from dynredis.core import messages as m
from dynredis.core.node import Node
from dynredis.storage.memory import MemoryEngine


def ports(name: str, mine: int) -> ClusterPorts:
    return ClusterPorts(Node(name, b"A", MemoryEngine()), mine)


def test_a_peer_not_heard_from_yet_is_taken_to_use_this_nodes_offset() -> None:
    # `dynredis cluster --cluster-port-offset 99`: right after start a node has not yet
    # heard every peer's port; it must not advertise main port + 10000 meanwhile.
    cp = ports("127.0.0.1:24705", 24804)
    assert cp.of("127.0.0.1:24705") == 24804
    assert cp.of("127.0.0.1:24706") == 24805


def test_what_a_peer_tells_wins_over_the_guess() -> None:
    cp = ports("127.0.0.1:7000", 17000)
    cp._on_cport("127.0.0.1:7001", m.cluster_port(30001))
    assert cp.of("127.0.0.1:7001") == 30001
    cp._on_cport("127.0.0.1:7002", m.cluster_port(0))  # it has none: its main port
    assert cp.of("127.0.0.1:7002") == 7002


def test_without_a_cluster_port_of_its_own_a_node_guesses_the_default() -> None:
    cp = ports("127.0.0.1:7000", 0)
    assert cp.of("127.0.0.1:7001") == 17001
    assert cp.of("127.0.0.1:60000") == 60000  # past 65535: the main port
