"""Hosts on their own addresses, made of Linux network namespaces, for tests.

A `Lab` is one namespace per host plus one holding a bridge (a switch); each host has a
veth pair from its `eth0` to a port of the bridge. Nothing is configured outside these
namespaces: 127.0.0.0/8 and the machine's own interfaces are untouched, and
namespace names carry a random tag, so labs of concurrent test runs never meet.

Faults are made on the wire, silently, as a network fails: `cut(a, b)` drops every
packet from a to b where it arrives at b (a policy-routing blackhole rule in b's
namespace; the sender sees no error, only silence), one way or both; `isolate(a)`
takes a's bridge port down; `heal()` undoes them all.
"""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

_LIVE: list[Lab] = []
CUT_PREF = 10  # policy rule priority of cuts (the local table's rule is moved after it)
LOCAL_PREF = 100


def _ip(*args: str) -> None:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if proc.returncode:
        raise LabError(f"`ip {' '.join(args)}` failed: {proc.stderr.strip()}")


class LabError(RuntimeError):
    pass


def unavailable() -> str | None:
    """Why network namespaces cannot be made here (None: they can)."""
    if os.geteuid() != 0:
        return "network namespaces need root (CI runs as root)"
    if shutil.which("ip") is None:
        return "the `ip` tool (iproute2) is not installed"
    probe = f"dyprobe{secrets.token_hex(3)}"
    proc = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True,
                          timeout=30)
    if proc.returncode:
        return f"`ip netns add` is not allowed here: {proc.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True, timeout=30)
    return None


@dataclass
class Host:
    name: str
    ip: str
    ns: str
    port_dev: str  # its port on the bridge (in the bridge's namespace)


class Lab:
    def __init__(self, prefix_len: int = 24) -> None:
        self.tag = "dy" + secrets.token_hex(3)
        self.prefix_len = prefix_len
        self.bridge_ns = f"{self.tag}-br"
        self.hosts: dict[str, Host] = {}
        self.cuts: set[tuple[str, str]] = set()
        self.isolated: set[str] = set()
        self.procs: list[subprocess.Popen] = []
        _ip("netns", "add", self.bridge_ns)
        _LIVE.append(self)
        _ip("-n", self.bridge_ns, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.bridge_ns, "link", "set", "br0", "up")

    def add_host(self, name: str, ip: str) -> Host:
        ns = f"{self.tag}-{name}"
        port_dev = f"p{len(self.hosts)}"
        _ip("netns", "add", ns)
        host = Host(name, ip, ns, port_dev)
        self.hosts[name] = host
        _ip("link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", port_dev,
            "netns", self.bridge_ns)
        _ip("-n", self.bridge_ns, "link", "set", port_dev, "master", "br0")
        _ip("-n", self.bridge_ns, "link", "set", port_dev, "up")
        _ip("-n", ns, "addr", "add", f"{ip}/{self.prefix_len}", "dev", "eth0")
        _ip("-n", ns, "link", "set", "eth0", "up")
        _ip("-n", ns, "link", "set", "lo", "up")
        # Cuts are rules that must come before local delivery.
        _ip("-n", ns, "rule", "add", "pref", str(LOCAL_PREF), "lookup", "local")
        _ip("-n", ns, "rule", "del", "pref", "0")
        return host

    # --- faults ----------------------------------------------------------------------

    def cut(self, a: str, b: str, both: bool = True) -> None:
        """Drop packets from a to b (and from b to a if `both`)."""
        for src, dst in ((a, b), (b, a)) if both else ((a, b),):
            if (src, dst) not in self.cuts:
                _ip("-n", self.hosts[dst].ns, "rule", "add", "pref", str(CUT_PREF), "from",
                    self.hosts[src].ip, "iif", "eth0", "blackhole")
                self.cuts.add((src, dst))

    def cut_groups(self, side_a: Sequence[str], side_b: Sequence[str],
                   both: bool = True) -> None:
        """A partition: nothing from side_a reaches side_b (nor back, if `both`)."""
        for a in side_a:
            for b in side_b:
                self.cut(a, b, both)

    def isolate(self, a: str) -> None:
        """Unplug a's cable: its bridge port goes down."""
        _ip("-n", self.bridge_ns, "link", "set", self.hosts[a].port_dev, "down")
        self.isolated.add(a)

    def heal(self) -> None:
        for src, dst in sorted(self.cuts):
            _ip("-n", self.hosts[dst].ns, "rule", "del", "pref", str(CUT_PREF), "from",
                self.hosts[src].ip, "iif", "eth0", "blackhole")
        self.cuts.clear()
        for a in sorted(self.isolated):
            _ip("-n", self.bridge_ns, "link", "set", self.hosts[a].port_dev, "up")
        self.isolated.clear()

    # --- processes -------------------------------------------------------------------

    def popen(self, host: str, argv: Sequence[str], **kw: object) -> subprocess.Popen:
        """Run `argv` inside `host`'s namespace (stopped by `close` at the latest)."""
        proc = subprocess.Popen(["ip", "netns", "exec", self.hosts[host].ns, *argv],
                                stdin=subprocess.DEVNULL, **kw)  # type: ignore[call-overload]
        self.procs.append(proc)
        return proc

    def run(self, host: str, argv: Sequence[str], timeout: float = 30,
            **kw: object) -> subprocess.CompletedProcess:
        return subprocess.run(["ip", "netns", "exec", self.hosts[host].ns, *argv],
                              capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, **kw)  # type: ignore[call-overload]

    def stop(self, proc: subprocess.Popen, sig: int = signal.SIGTERM,
             timeout: float = 10) -> None:
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)

    def close(self) -> None:
        for proc in self.procs:
            self.stop(proc)
        for host in self.hosts.values():
            subprocess.run(["ip", "netns", "del", host.ns], capture_output=True, timeout=30)
        subprocess.run(["ip", "netns", "del", self.bridge_ns], capture_output=True, timeout=30)
        self.hosts.clear()
        if self in _LIVE:
            _LIVE.remove(self)


@atexit.register
def _close_all() -> None:
    for lab in list(_LIVE):
        lab.close()
