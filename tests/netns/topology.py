"""The namespace tests' cluster: three nodes on their own addresses, as the compose
file runs them."""

from __future__ import annotations

from dataclasses import dataclass, field

CTL_IP = "172.28.0.100"  # the control host the tests ask from (the docker host's place)


@dataclass
class NodeSpec:
    name: str
    ip: str
    port: int
    env: dict[str, str] = field(default_factory=dict)
    command: list[str] = field(default_factory=lambda: ["dynredis", "node"])


def topology() -> list[NodeSpec]:
    ips = {"node1": "172.28.0.11", "node2": "172.28.0.12", "node3": "172.28.0.13"}
    specs = []
    for name, ip in ips.items():
        seeds = ",".join(f"{other}:7000" for o, other in ips.items() if o != name)
        specs.append(NodeSpec(name, ip, 7000, {
            "DYNREDIS_BIND": "0.0.0.0", "DYNREDIS_PORT": "7000",
            "DYNREDIS_ANNOUNCE_IP": ip, "DYNREDIS_SEEDS": seeds}))
    return specs
