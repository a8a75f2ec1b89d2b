"""A dynredis cluster whose nodes sit on their own addresses, one network namespace
each (lab.py), started as the container image starts them: `dynredis node` configured
by environment, listening on every address and announcing its own (topology.py).

The test process cannot reach those addresses (it stays in the machine's namespace),
so it asks from a control host on the same bridge (`ctl`, never cut off) through
probe.py, and runs workload clients (client.py) inside the nodes' namespaces, so a
partition cuts a client off together with its node.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from .lab import Lab
from .topology import CTL_IP, NodeSpec

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
START_TIMEOUT_S = 60.0
REPLICAS = 3  # N: the nodes' default (neither the image nor the services change it)


def wait_for(pred: Callable[[], object], timeout: float, what: str,
             interval: float = 0.3) -> object:
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}"
                                 + (f" (last: {last})" if last else ""))
        time.sleep(interval)


class NetCluster:
    def __init__(self, lab: Lab, specs: list[NodeSpec], data_root: Path) -> None:
        self.lab = lab
        self.specs = {s.name: s for s in specs}
        self.data_root = data_root
        self.secret = secrets.token_hex(32)
        self.procs: dict[str, subprocess.Popen] = {}
        self.departed: list[str] = []  # nodes that left the cluster (stopped)
        for spec in specs:
            lab.add_host(spec.name, spec.ip)
        lab.add_host("ctl", CTL_IP)

    @property
    def names(self) -> list[str]:
        """The members: every node started, but those that left."""
        return [name for name in self.specs if name not in self.departed]

    def addr(self, name: str) -> str:
        spec = self.specs[name]
        return f"{spec.ip}:{spec.port}"

    def node_env(self, name: str) -> dict[str, str]:
        """The node's environment: the image's and the service's settings, with the data
        directory moved to the test's and the secret the test made."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("DYNREDIS_")}
        env.update(self.specs[name].env)
        env["DYNREDIS_DATA_DIR"] = str(self.data_root / name)
        env["DYNREDIS_CLUSTER_SECRET"] = self.secret
        env["PATH"] = f"{Path(PY).parent}:{env.get('PATH', '')}"
        return env

    def log_path(self, name: str) -> Path:
        return self.data_root / f"{name}.log"

    def start_node(self, name: str) -> None:
        spec = self.specs[name]
        (self.data_root / name).mkdir(parents=True, exist_ok=True)
        with open(self.log_path(name), "ab") as log:
            self.procs[name] = self.lab.popen(name, spec.command, stdout=log, stderr=log,
                                              env=self.node_env(name), cwd=ROOT)

    def start(self) -> None:
        for name in self.specs:
            self.start_node(name)
        self.wait_ready()

    def add_node(self, spec: NodeSpec, timeout: float = START_TIMEOUT_S) -> None:
        """A host more on the bridge, and a node on it started as the others were; it
        serves once this returns (as a cluster of its own until a change joins it)."""
        self.specs[spec.name] = spec
        self.lab.add_host(spec.name, spec.ip)
        self.start_node(spec.name)

        def serves() -> bool:
            if self.procs[spec.name].poll() is not None:
                raise AssertionError(f"node {spec.name} exited:\n{self.log_tail(spec.name)}")
            info = self.info(spec.name)
            return info.get("loading") == "0"

        wait_for(serves, timeout, f"node {spec.name} to serve")

    def depart(self, name: str, timeout: float = 60.0) -> None:
        """`name` left the cluster: wait until its process stops by itself (a node that
        left drops its data and exits), then count it out of the members."""
        proc = self.procs[name]
        wait_for(lambda: proc.poll() is not None, timeout, f"node {name} to stop after leaving")
        self.departed.append(name)

    def wait_ready(self, timeout: float = START_TIMEOUT_S) -> None:
        """Every node serves and sees every member up in one agreed ring."""
        n = len(self.names)

        def ready() -> bool:
            epochs = set()
            for name in self.names:
                if self.procs[name].poll() is not None:
                    raise AssertionError(f"node {name} exited:\n{self.log_tail(name)}")
                info = self.probe("info", name)
                if not isinstance(info, dict) or info.get("loading") != "0" \
                        or info.get("members_down") or info.get("ring_members") != str(n):
                    return False
                epochs.add((info["ring_epoch"], info["ring_claimant"]))
            return len(epochs) == 1

        wait_for(ready, timeout, "the cluster to form")

    def log_tail(self, name: str, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path(name).read_text(errors="replace")
                             .splitlines()[-lines:])
        except OSError:
            return ""

    def logs(self) -> str:
        return "\n".join(f"----- {name} -----\n{self.log_tail(name)}" for name in self.specs)

    def info(self, name: str, host: str = "ctl") -> dict[str, str]:
        """INFO dynamo of node `name` by redis-cli (quick enough to poll; {} when it
        does not answer)."""
        proc = self.cli(name, "INFO", "dynamo", host=host)
        return dict(line.split(":", 1) for line in proc.stdout.splitlines()
                    if ":" in line and not line.startswith("#"))

    # --- asking ----------------------------------------------------------------------

    def probe(self, what: str, name: str, *args: str, host: str = "ctl") -> object:
        """probe.py's answer (None when the node did not answer)."""
        proc = self.lab.run(host, [PY, "-m", "tests.netns.probe", what, "--node",
                                   self.addr(name), *args], cwd=ROOT)
        if proc.returncode:
            return None
        return json.loads(proc.stdout)

    def cli(self, name: str, *words: str, host: str = "ctl") -> subprocess.CompletedProcess:
        """redis-cli against node `name`, run on `host`."""
        spec = self.specs[name]
        return self.lab.run(host, ["redis-cli", "-h", spec.ip, "-p", str(spec.port), *words])

    def admin(self, name: str, *words: str, host: str = "ctl") -> subprocess.CompletedProcess:
        """`dynredis admin WORDS` against node `name`, run on `host`."""
        spec = self.specs[name]
        return self.lab.run(host, [PY, "-m", "dynredis", "admin", *words, "--host", spec.ip,
                                   "--port", str(spec.port),
                                   "--data-dir", str(self.data_root / "admin")], cwd=ROOT)

    def client(self, host: str, node: str, cid: str, keys: list[str], out: Path,
               r: int = 0, w: int = 0) -> subprocess.Popen:
        """A workload client in `host`'s namespace, talking to `node`."""
        argv = [PY, "-m", "tests.netns.client", "--node", self.addr(node), "--id", cid,
                "--keys", ",".join(keys), "--out", str(out)]
        if r:
            argv += ["--r", str(r)]
        if w:
            argv += ["--w", str(w)]
        return self.lab.popen(host, argv, cwd=ROOT, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)

    def converged(self, keys: list[str], timeout: float = 60.0) -> dict[str, list[str]]:
        """Wait until every node answers the same siblings for every key (reads of all
        N replicas); that state."""
        arg = ",".join(keys)
        n = str(min(len(self.names), REPLICAS))

        def agreed() -> dict[str, list[str]] | None:
            states = [self.probe("state", name, "--keys", arg, "--r", n)
                      for name in self.names]
            if any(s is None for s in states) or any(s != states[0] for s in states):
                return None
            return states[0]  # type: ignore[return-value]

        return wait_for(agreed, timeout, "every node to answer the same state")  # type: ignore[return-value]
