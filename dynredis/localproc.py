"""Local node processes and their ports: what `dynredis cluster` checks before it starts
or restarts nodes, shared with the benchmark and the tests that start clusters."""

from __future__ import annotations

import os
import socket


def port_free(host: str, port: int) -> bool:
    """Whether a server could listen on `host`:`port` now (nothing else holds it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def pid_alive(pid: int) -> bool:
    """Whether process `pid` runs. One that exited but was not reaped yet (a zombie: a
    killed node of a detached cluster, whose parent is gone) counts as dead where /proc
    tells; a process of another user counts as alive."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return not os.path.isdir("/proc/self")  # gone since, or no /proc on this system
    # The state follows the command name, which is in parentheses.
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")
