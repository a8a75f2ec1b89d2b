"""`dynredis cluster --detach` (what `make cluster` runs) on a cluster with a dead node
starts that node again, on its port and data directory, and leaves the others be; a
start that cannot work says why at once."""

from __future__ import annotations

import re
import socket
import subprocess
from pathlib import Path

import redis

from .conftest import (
    CLUSTER_PORT_OFFSET,
    HOST,
    START_TIMEOUT_S,
    ClusterFactory,
    cluster_cmd,
    dynredis_cmd,
    free_port_range,
    pid_alive,
    wait_until,
)


def test_cluster_command_restarts_a_killed_node_and_it_serves_every_write(
        cluster_factory: ClusterFactory) -> None:
    c = cluster_factory()
    writer = c.client(0)
    for i in range(200):
        assert writer.set(f"k{i}", f"v{i}")
    c.kill_node(1)
    survivors = (c.pids[0], c.pids[2])

    # No --base-port: the nodes' ports come from the cluster's record (cluster.ports).
    again = cluster_cmd("--nodes", "3", "--data-dir", str(c.data_dir), "--detach")
    proc = subprocess.run(again, capture_output=True, text=True, timeout=START_TIMEOUT_S,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout + proc.stderr + c.log_tails()
    assert f"restarted the node(s) on port(s) {c.ports[1]}" in proc.stdout
    c._read_pids()
    c.up[1] = True
    c.cmdlines[1] = c._cmdline(c.pids[1])
    assert (c.pids[0], c.pids[2]) == survivors
    assert pid_alive(c.pids[1])
    assert f"--port {c.ports[1]}" in " ".join(c.cmdlines[1])

    reader = c.client(1)
    assert [reader.get(f"k{i}") for i in range(200)] == [f"v{i}" for i in range(200)]

    # Everything up: the same command (`make cluster` again) says so and changes nothing.
    proc = subprocess.run(again, capture_output=True, text=True, timeout=START_TIMEOUT_S,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr
    assert "already running" in proc.stdout
    c._read_pids()
    assert (c.pids[0], c.pids[2]) == survivors and all(pid_alive(p) for p in c.pids)


def test_a_restarted_node_keeps_every_setting_and_the_password(
        cluster_factory: ClusterFactory) -> None:
    """Started with a password and non-default settings, a node killed and started again
    the README way runs the same settings and still requires the password; the CLI
    reads the password from the cluster's record (no NOAUTH traceback)."""
    c = cluster_factory("--requirepass", "pw-kept", "--durability", "fsync", "--engine",
                        "memory", "--n", "2", "--r", "1", "--w", "1", "--timeout-ms", "3000",
                        "--ring-size", "64", "--phi-threshold", "9.5")
    def settings(i: int) -> dict[str, str]:
        info = c.client(i, password="pw-kept").info("dynamo")
        return {k: str(info[k]) for k in ("n", "r", "w", "engine", "durability",
                                           "timeout_ms", "ring_size")}

    before = settings(1)
    assert before == {"n": "2", "r": "1", "w": "1", "engine": "memory", "durability": "fsync",
                      "timeout_ms": "3000", "ring_size": "64"}
    c.kill_node(1)
    again = cluster_cmd("--nodes", "3", "--data-dir", str(c.data_dir), "--detach",
                         "--requirepass", "another", "--n", "3")
    proc = subprocess.run(again, capture_output=True, text=True, timeout=START_TIMEOUT_S,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout + proc.stderr + c.log_tails()
    assert "Traceback" not in proc.stderr
    assert "ignored: --n 3, --requirepass" in proc.stderr
    c._read_pids()
    c.up[1] = True
    c.cmdlines[1] = c._cmdline(c.pids[1])
    assert "pw-kept" not in " ".join(c.cmdlines[1])
    assert "--phi-threshold 9.5" in " ".join(c.cmdlines[1])
    assert settings(1) == before
    refused = subprocess.run(["redis-cli", "-p", str(c.ports[1]), "KEYS", "*"],
                             capture_output=True, text=True, timeout=30)
    assert refused.stdout.startswith("NOAUTH"), refused.stdout
    # `dynredis status` of a node of the cluster takes the password from the record.
    status = subprocess.run(dynredis_cmd("status", "--data-dir", str(c.data_dir), "--port",
                                         str(c.ports[1])),
                            capture_output=True, text=True, timeout=30)
    assert status.returncode == 0 and "durability: fsync" in status.stdout, status.stderr

    # Stopped, then started with no option at all: the record's settings again.
    c.stop()
    start = cluster_cmd("--nodes", "3", "--base-port", str(c.base_port),
                         "--data-dir", str(c.data_dir), "--detach")
    proc = subprocess.run(start, capture_output=True, text=True, timeout=START_TIMEOUT_S,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    c._read_pids()
    c.up = [True] * 3
    c.cmdlines = [c._cmdline(p) for p in c.pids]
    assert all(settings(i) == before for i in range(3))
    assert c.cli(0, "GET", "k").startswith("NOAUTH")


def test_foreground_cluster_command_names_the_dead_node_instead_of_starting(
        cluster_factory: ClusterFactory) -> None:
    c = cluster_factory()
    c.kill_node(2)
    # A record without ports (an earlier build's): they are counted from --base-port.
    (c.data_dir / "cluster.ports").unlink()
    cmd = cluster_cmd("--nodes", "3", "--base-port", str(c.base_port),
                       "--data-dir", str(c.data_dir))
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=START_TIMEOUT_S,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 1
    assert f"port(s) {c.ports[2]} are down" in proc.stderr
    assert "--detach" in proc.stderr
    assert not pid_alive(c.pids[2])


def test_cluster_command_names_a_port_in_use_and_starts_nothing(tmp_path: Path) -> None:
    base = free_port_range(3, offset=CLUSTER_PORT_OFFSET)
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind((HOST, base + 1))
        holder.listen()
        proc = subprocess.run(
            cluster_cmd("--base-port", str(base), "--data-dir", str(tmp_path),
                         "--detach"),
            capture_output=True, text=True, timeout=START_TIMEOUT_S, stdin=subprocess.DEVNULL)
    assert proc.returncode == 1
    assert f"port(s) {base + 1} on {HOST} are in use" in proc.stderr
    assert not (tmp_path / "cluster.pids").exists()
    assert not any(tmp_path.glob("node-*"))


def test_cluster_command_reports_a_node_that_exits_at_start(tmp_path: Path) -> None:
    base = free_port_range(3, offset=CLUSTER_PORT_OFFSET)
    proc = subprocess.run(
        cluster_cmd("--base-port", str(base), "--data-dir", str(tmp_path),
                     "--detach", "--ring-size", "3"),
        capture_output=True, text=True, timeout=START_TIMEOUT_S, stdin=subprocess.DEVNULL)
    assert proc.returncode == 1
    assert "the cluster did not come up" in proc.stderr
    # It stops waiting at the first exit: which node that is depends on scheduling.
    assert re.search(rf"node on port ({base}|{base + 1}|{base + 2}) exited \(2\): "
                     "dynredis: ring size must be a power of two", proc.stderr), proc.stderr
    assert not (tmp_path / "cluster.pids").exists()


def test_nodes_still_starting_at_the_ready_timeout_are_left_running(tmp_path: Path) -> None:
    """A node reads its whole store before it serves (a filled store: many seconds); the
    CLI giving up waiting must not kill a cluster that is on its way up."""
    base = free_port_range(3, offset=CLUSTER_PORT_OFFSET)
    proc = subprocess.run(
        cluster_cmd("--base-port", str(base), "--data-dir", str(tmp_path), "--detach",
                    "--ready-timeout", "0.05"),
        capture_output=True, text=True, timeout=START_TIMEOUT_S, stdin=subprocess.DEVNULL)
    stop = dynredis_cmd("stop", "--data-dir", str(tmp_path))
    try:
        assert proc.returncode == 1
        assert "still starting after 0.05 s" in proc.stderr, proc.stderr
        pids = [int(n) for n in (tmp_path / "cluster.pids").read_text().split()]
        assert len(pids) == 3 and all(pid_alive(p) for p in pids)
        client = redis.Redis(host=HOST, port=base, socket_timeout=10)
        wait_until(lambda: client.set("k", "v"), START_TIMEOUT_S, what="the cluster up")
        assert client.get("k") == b"v"
    finally:
        subprocess.run(stop, capture_output=True, timeout=START_TIMEOUT_S)
