"""ioredis (Node.js, installed from npm into compat/node_modules) against a live cluster:
a plain `Redis` client (compat/ioredis_standalone.js) and `Cluster`
(compat/ioredis_cluster.js). Each script prints one JSON line of findings.

Missing node, npm or ioredis is a failure, never a skip: an untested client is not a
compatible one (scripts/install.sh --test installs ioredis).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.integration.conftest import HOST, Cluster

pytestmark = pytest.mark.timeout(120)

NODE_TIMEOUT_S = 60
SLOTS = 16384
STANDALONE_FAMILIES = ("connection", "strings", "keys", "counters", "pipelines",
                       "transactions", "scan", "versioned", "hashes", "sets", "sorted sets",
                       "lists", "databases")


def run_node(compat_dir: Path, script: str, *args: str) -> tuple[int, dict, str]:
    """Run `node compat/SCRIPT args`; returns (exit code, its JSON line, stderr)."""
    try:
        proc = subprocess.run(["node", str(compat_dir / script), *args], cwd=compat_dir,
                              capture_output=True, text=True, timeout=NODE_TIMEOUT_S,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"node {script} did not finish within {NODE_TIMEOUT_S}s; "
                    f"stdout: {exc.stdout!r}", pytrace=False)
    lines = proc.stdout.strip().splitlines()
    assert lines, f"node {script} printed nothing (exit {proc.returncode}): {proc.stderr}"
    try:
        result = json.loads(lines[-1])
    except json.JSONDecodeError:
        pytest.fail(f"node {script}: last line is not JSON: {lines[-1]!r}\n{proc.stderr}",
                    pytrace=False)
    return proc.returncode, result, proc.stderr


@pytest.fixture(scope="module")
def standalone(ioredis_ready: Path, cluster: Cluster) -> tuple[int, dict, str]:
    return run_node(ioredis_ready, "ioredis_standalone.js", HOST, str(cluster.ports[0]),
                    str(cluster.ports[1]))


@pytest.mark.parametrize("family", [
    pytest.param(f, id=f.replace(" ", "-"), marks=pytest.mark.compat(client="ioredis", family=f))
    for f in STANDALONE_FAMILIES])
def test_ioredis_standalone(standalone: tuple[int, dict, str], family: str) -> None:
    code, result, stderr = standalone
    assert "error" not in result, result["error"]
    got = result["families"].get(family)
    assert got is not None, f"the script did not reach {family!r}: {result} {stderr}"
    assert got["failed"] == [], got["failed"]
    assert got["passed"] > 0


@pytest.mark.compat(client="ioredis", family="connection")
def test_ioredis_standalone_script_exit_code(standalone: tuple[int, dict, str]) -> None:
    code, result, stderr = standalone
    assert set(result.get("families", {})) == set(STANDALONE_FAMILIES), result
    assert code == 0 and result["ok"] is True, (result, stderr)


@pytest.mark.parametrize("bootstrap", [
    pytest.param("main", id="from-a-main-port",
                 marks=pytest.mark.compat(client="ioredis Cluster", family="cluster")),
    pytest.param("cluster", id="from-a-cluster-port",
                 marks=pytest.mark.compat(client="ioredis Cluster", family="cluster")),
])
def test_ioredis_cluster_routes_and_fans_out(ioredis_ready: Path, cluster: Cluster,
                                             bootstrap: str) -> None:
    """`Cluster` discovers the three masters (at their cluster ports) from any node,
    sends each key to its partition's owner, and DBSIZE/SCAN fanned out to the masters
    see every key exactly once."""
    port = cluster.ports[2] if bootstrap == "main" else cluster.cluster_ports[1]
    code, result, stderr = run_node(ioredis_ready, "ioredis_cluster.js", HOST, str(port), "200")
    assert code == 0 and result["ok"], (result, stderr)
    assert result["masters"] == [f"{HOST}:{p}" for p in sorted(cluster.cluster_ports)]
    assert result["covered"] == SLOTS and result["misrouted"] == 0
    assert result["scanned"] == result["scanned_unique"] == 200


CLUSTER_FAMILIES = ("hashes", "sets", "sorted sets", "lists")


@pytest.fixture(scope="module")
def cluster_run(ioredis_ready: Path, cluster: Cluster) -> tuple[int, dict, str]:
    return run_node(ioredis_ready, "ioredis_cluster.js", HOST, str(cluster.cluster_ports[0]), "50")


@pytest.mark.parametrize("family", [
    pytest.param(f, id=f.replace(" ", "-"),
                 marks=pytest.mark.compat(client="ioredis Cluster", family=f))
    for f in CLUSTER_FAMILIES])
def test_ioredis_cluster_collections(cluster_run: tuple[int, dict, str], family: str) -> None:
    """Collection commands through `Cluster`: each key at its slot's master, multi-key
    commands on keys of one hash tag."""
    code, result, stderr = cluster_run
    got = result.get("families", {}).get(family)
    assert got is not None, f"the script did not reach {family!r}: {result} {stderr}"
    assert got["failed"] == [], got["failed"]
    assert got["passed"] > 0
