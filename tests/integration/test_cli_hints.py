"""What the CLI tells a user to type next works as written: the stop hint of a started
cluster stops it, from the shell it was started in; run by make, the hints are make
targets; `status` of a node that is not running says so, without a traceback."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from .conftest import (
    CLUSTER_PORT_OFFSET,
    ClusterFactory,
    cluster_cmd,
    free_port_range,
    pid_alive,
    wait_dead,
)

ROOT = Path(__file__).resolve().parents[2]


def test_the_stop_hint_a_cluster_prints_stops_it_as_written(
        cluster_factory: ClusterFactory) -> None:
    c = cluster_factory()
    hint = re.search(r"stop it with:\s+(.+)", c.start_output)
    assert hint, c.start_output
    status = re.search(r"status:\s+(.+)", c.start_output)
    assert status and f"--port {c.ports[0]}" in status.group(1), c.start_output
    shown = subprocess.run(status.group(1), shell=True, capture_output=True, text=True,
                           timeout=30)
    assert shown.returncode == 0, shown.stderr
    assert all(f"127.0.0.1:{p}  " in shown.stdout for p in c.ports), shown.stdout
    stopped = subprocess.run(hint.group(1), shell=True, capture_output=True, text=True,
                             timeout=60)
    assert stopped.returncode == 0, stopped.stderr
    assert "stopped 3 node(s)" in stopped.stdout
    assert all(wait_dead(pid, 15) for pid in c.pids)


def test_run_by_make_the_hints_are_make_targets(tmp_path: Path) -> None:
    base = free_port_range(3, offset=CLUSTER_PORT_OFFSET)
    data = tmp_path / "viamake"
    cmd = cluster_cmd("--detach", "--base-port", str(base), "--data-dir",
                       str(data))
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, DYNREDIS_HINTS="make"))
    try:
        assert proc.returncode == 0, proc.stderr
        assert f"stop it with:  make stop DATA={data}" in proc.stdout
        assert f"status:        make status DATA={data} PORT={base}" in proc.stdout
        again = subprocess.run(cmd, capture_output=True, text=True, timeout=60,
                               env=dict(os.environ, DYNREDIS_HINTS="make"))
        assert f"(stop it with: make stop DATA={data})" in again.stdout
        # make status / make stop with those variables reach this cluster.
        shown = subprocess.run(["make", "-s", "status", f"PORT={base}", f"DATA={data}"],
                               cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert shown.returncode == 0, shown.stderr
        assert all(f"127.0.0.1:{base + i}  " in shown.stdout for i in range(3)), shown.stdout
    finally:
        pids = [int(x) for x in (data / "cluster.pids").read_text().split()] \
            if (data / "cluster.pids").exists() else []
        stopped = subprocess.run(["make", "-s", "stop", f"DATA={data}"], cwd=ROOT,
                                 capture_output=True, text=True, timeout=60)
        for pid in pids:
            if pid_alive(pid):
                os.kill(pid, 9)
    assert stopped.returncode == 0 and "stopped 3 node(s)" in stopped.stdout


def test_status_of_a_node_that_is_not_running_says_so(tmp_path: Path) -> None:
    port = free_port_range(1)
    for argv, cwd in (([sys.executable, "-m", "dynredis", "status", "--port", str(port)],
                       tmp_path),
                      ([sys.executable, "-m", "dynredis", "admin", "status", "--port",
                        str(port)], tmp_path),
                      (["make", "-s", "status", f"PORT={port}", f"DATA={tmp_path}"], ROOT)):
        proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=60)
        assert proc.returncode != 0
        assert "Traceback" not in proc.stderr
        assert f"no node answers on 127.0.0.1:{port} (connection refused)" in proc.stderr
        assert "A local cluster starts with: " in proc.stderr
