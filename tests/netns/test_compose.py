"""docker/compose.yaml's cluster, run in network namespaces (there is no container
engine on the test machines): the three nodes on the compose file's addresses with the
image's entry point and environment and each service's. The image's health check
passes in each node's namespace, the zones the services set spread every key's
replicas over three zones, and a node stopped and started again on its data (the
service's volume) serves what it held."""

from __future__ import annotations

import json
import re

from .netcluster import PY, ROOT, NetCluster
from .topology import image


def test_each_node_passes_the_image_healthcheck(net_cluster: NetCluster) -> None:
    c = net_cluster
    check = image().healthcheck
    assert "redis-cli" in check
    for name in c.names:
        proc = c.lab.run(name, ["sh", "-c", check], env=c.node_env(name))
        assert proc.returncode == 0, (name, proc.stdout, proc.stderr)


def test_the_services_zones_spread_every_key_over_three_zones(net_cluster: NetCluster) -> None:
    c = net_cluster
    for name, spec in c.specs.items():
        info = c.probe("info", name)
        assert isinstance(info, dict)
        assert info["zone"] == spec.env["DYNREDIS_ZONE"]
        assert info["replica_zones_min"] == "3"
        assert info["node_name"] == f"{spec.ip}:{spec.port}"
    shards = c.cli("node2", "--json", "CLUSTER", "SHARDS").stdout
    zones = {n["ip"]: n.get("zone") for shard in json.loads(shards) for n in shard["nodes"]}
    assert zones == {s.ip: s.env["DYNREDIS_ZONE"] for s in c.specs.values()}


def test_admin_status_shows_every_member_with_its_zone(net_cluster: NetCluster) -> None:
    """`dynredis admin status` (`docker compose exec node1 dynredis admin status`) asks
    each member on its own address."""
    c = net_cluster
    proc = c.lab.run("node1", [PY, "-m", "dynredis", "admin", "status"], cwd=ROOT,
                     env=c.node_env("node1"))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("MEMBER"))
    rows = {cells[0]: cells for cells in (re.split(r"\s{2,}", line)
                                          for line in lines[head + 1:head + 4])}
    assert sorted(rows) == sorted(c.addr(name) for name in c.names), proc.stdout
    for name, spec in c.specs.items():
        _, zone, state, partitions, transfers, hints, last = rows[c.addr(name)]
        assert (zone, state) == (spec.env["DYNREDIS_ZONE"], "up"), proc.stdout
        assert int(partitions) > 0 and transfers.isdigit() and hints.isdigit()
    assert "warning" not in proc.stdout


def test_a_node_restarted_on_its_volume_serves_what_it_held(net_cluster: NetCluster) -> None:
    c = net_cluster
    for i in range(30):
        assert c.cli("node1", "SET", f"vol{i}", f"v{i}").stdout.strip() == "OK"
    c.lab.stop(c.procs["node2"])  # docker stop: SIGTERM
    c.start_node("node2")
    c.wait_ready()
    values = [c.cli("node2", "GET", f"vol{i}").stdout.strip() for i in range(30)]
    assert values == [f"v{i}" for i in range(30)]
    assert int(c.probe("info", "node2")["local_keys"]) >= 30  # type: ignore[index]
